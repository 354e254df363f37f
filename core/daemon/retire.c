/*
 * retire.c - contexts of earlier configurations, freed once idle (see
 * daemon.h).
 */
#include "daemon.h"

#include "danests.h"

#include <stdlib.h>
#include <syslog.h>

struct dmn_retired_ctx {
	struct danests_ctx *ctx;
	struct dmn_retired_ctx *next;
};

/* dmn_ctx_retire - see daemon.h */
bool
dmn_ctx_retire(struct dmn_retired *r, struct danests_ctx *ctx)
{
	struct dmn_retired_ctx *o;

	if (ctx == NULL)
		return true;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return false;	/* leaked rather than cut its requests */
	o->ctx = ctx;
	o->next = r->head;
	r->head = o;
	r->n++;
	return true;
}

/* dmn_ctx_reap - see daemon.h */
size_t
dmn_ctx_reap(struct dmn_retired *r)
{
	struct dmn_retired_ctx **pp, *o;

	for (pp = &r->head; (o = *pp) != NULL;) {
		if (danests_ctx_pending(o->ctx) != 0) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		r->n--;
		danests_ctx_free(o->ctx);
		free(o);
		dmn_log(LOG_INFO, "context of an earlier configuration freed "
		    "(%zu still busy)", r->n);
	}
	return r->n;
}

/* dmn_ctx_retire_all - see daemon.h */
void
dmn_ctx_retire_all(struct dmn_retired *r)
{
	struct dmn_retired_ctx *o;

	while ((o = r->head) != NULL) {
		r->head = o->next;
		danests_ctx_free(o->ctx);
		free(o);
	}
	r->n = 0;
}
