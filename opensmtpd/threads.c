/*
 * threads.c - the threads of danests-relay: one per LMTP session, a
 * global bound on the delivery threads those sessions start, and the stop
 * that ends them all.
 *
 * Session threads are joinable and listed here; the main thread reaps
 * them as they end and joins every one before it exits, so the process
 * never exits under a live session.  A stop (SIGTERM) makes an eventfd
 * readable that every session polls beside its socket: a session waiting
 * for a command or message data says 421 and ends at once, a session
 * past the end of DATA finishes its deliveries within
 * transaction_timeout and gives its replies.
 *
 * Delivery slots: at most max_deliveries domain deliveries run at once
 * over all sessions.  A session takes one slot per worker thread; when
 * none is free it waits in a FIFO queue, and a session that wants more
 * takes its place at the tail again for each further slot, so sessions
 * are served in turn (one slot each) whatever their number of domains.
 * A slot freed while someone waits is handed to the head of the queue.
 */
#include "relay.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

/* One session thread. */
struct sthread {
	pthread_t tid;
	int fd;
	bool done;		/* its body returned; join it */
	struct sthread *next;
};

/* One session waiting for a delivery slot. */
struct slot_wait {
	pthread_cond_t cond;
	bool granted;
	struct slot_wait *next;
};

static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static struct sthread *threads;		/* under tlock */
static unsigned nopen;			/* under tlock: not yet done */
static int stop_fd = -1;		/* readable once stopping */
static bool stopping;			/* under tlock */
static unsigned slots_used, slots_max = 1;	/* under tlock */
static struct slot_wait *wq_head, *wq_tail;	/* under tlock */

/* threads_init - the stop descriptor; before any session starts */
int
threads_init(void)
{
	if ((stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -1;
	return 0;
}

/* relay_stop_fd - readable once the relay stops (for poll) */
int
relay_stop_fd(void)
{
	return stop_fd;
}

/* relay_stopping - true once SIGTERM arrived */
bool
relay_stopping(void)
{
	bool s;

	pthread_mutex_lock(&tlock);
	s = stopping;
	pthread_mutex_unlock(&tlock);
	return s;
}

/* threads_stop - wake every session: idle ones end with 421 */
void
threads_stop(void)
{
	uint64_t one = 1;

	pthread_mutex_lock(&tlock);
	stopping = true;
	pthread_mutex_unlock(&tlock);
	if (stop_fd >= 0)
		(void)write(stop_fd, &one, sizeof(one));
}

/* session_body - the thread body around session_main */
static void *
session_body(void *arg)
{
	struct sthread *t = arg;

	session_main(t->fd);
	pthread_mutex_lock(&tlock);
	t->done = true;
	nopen--;
	pthread_mutex_unlock(&tlock);
	return NULL;
}

/* threads_session - a thread for an accepted connection (fd is the
 * thread's from now on).  0 started, 1 max sessions reached, -1 error;
 * the caller closes fd unless 0. */
int
threads_session(int fd, unsigned max)
{
	struct sthread *t;
	pthread_attr_t attr;
	int rc = -1;

	pthread_mutex_lock(&tlock);
	if (nopen >= max || stopping) {
		pthread_mutex_unlock(&tlock);
		return 1;
	}
	if ((t = calloc(1, sizeof(*t))) != NULL) {
		t->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		/* under tlock: the reaper sees t only with its tid set */
		if (pthread_create(&t->tid, &attr, session_body, t) == 0) {
			t->next = threads;
			threads = t;
			nopen++;
			rc = 0;
		} else
			free(t);
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&tlock);
	return rc;
}

/* threads_reap - join the session threads that ended; the number still
 * open */
unsigned
threads_reap(void)
{
	struct sthread **pp, *t, *done = NULL;
	unsigned n;

	pthread_mutex_lock(&tlock);
	for (pp = &threads; (t = *pp) != NULL; ) {
		if (t->done) {
			*pp = t->next;
			t->next = done;
			done = t;
		} else
			pp = &t->next;
	}
	n = nopen;
	pthread_mutex_unlock(&tlock);
	while ((t = done) != NULL) {
		done = t->next;
		pthread_join(t->tid, NULL);
		free(t);
	}
	return n;
}

/* threads_join - join every session thread (at exit, after a stop; each
 * of their waits is bounded) */
void
threads_join(void)
{
	struct sthread *t, *all;

	pthread_mutex_lock(&tlock);
	all = threads;
	threads = NULL;
	pthread_mutex_unlock(&tlock);
	while ((t = all) != NULL) {
		all = t->next;
		pthread_join(t->tid, NULL);
		free(t);
	}
}

/* relay_slot_get - one delivery slot out of max, waiting in turn until
 * end_ms (monotonic).  true when the caller holds a slot (and must give
 * it back with relay_slot_put), false when the time ran out. */
bool
relay_slot_get(unsigned max, uint64_t end_ms)
{
	struct slot_wait w;
	pthread_condattr_t ca;
	struct timespec ts;
	struct slot_wait **pp;
	bool got;
	int rc = 0;

	pthread_mutex_lock(&tlock);
	slots_max = max;
	if (wq_head == NULL && slots_used < slots_max) {
		slots_used++;
		pthread_mutex_unlock(&tlock);
		return true;
	}
	memset(&w, 0, sizeof(w));
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (wq_tail != NULL)
		wq_tail->next = &w;
	else
		wq_head = &w;
	wq_tail = &w;
	ts.tv_sec = (time_t)(end_ms / 1000);
	ts.tv_nsec = (long)(end_ms % 1000) * 1000000;
	while (!w.granted && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w.cond, &tlock, &ts);
	if (!(got = w.granted)) {
		/* leave the queue */
		for (pp = &wq_head; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
		}
		if (wq_tail == &w) {
			struct slot_wait *p;

			wq_tail = NULL;
			for (p = wq_head; p != NULL; p = p->next)
				wq_tail = p;
		}
	}
	pthread_mutex_unlock(&tlock);
	pthread_cond_destroy(&w.cond);
	return got;
}

/* relay_slot_put - give a slot back: to the first waiter, or free it */
void
relay_slot_put(void)
{
	struct slot_wait *w;

	pthread_mutex_lock(&tlock);
	if ((w = wq_head) != NULL && slots_used <= slots_max) {
		wq_head = w->next;
		if (wq_head == NULL)
			wq_tail = NULL;
		w->next = NULL;
		w->granted = true;
		pthread_cond_signal(&w->cond);
	} else
		slots_used--;
	pthread_mutex_unlock(&tlock);
}
