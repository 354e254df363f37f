/*
 * conf.c - the configuration keys every danests daemon has and its -n
 * check (see daemon.h).
 */
#include "daemon.h"

#include "danests.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* dmn_conf_user_default - the service account */
void
dmn_conf_user_default(struct dmn_conf_user *u)
{
	memset(u, 0, sizeof(*u));
	strlcpy(u->name, DANESTS_DEFAULT_USER, sizeof(u->name));
}

/* dmn_conf_user - see daemon.h; a name that does not fit is refused,
 * never cut */
bool
dmn_conf_user(struct dmn_conf_user *u, const char *val, const char *file,
    unsigned line, char *why, size_t whylen)
{
	if (strlen(val) >= sizeof(u->name)) {
		snprintf(why, whylen, "name too long");
		return false;
	}
	strlcpy(u->name, val, sizeof(u->name));
	snprintf(u->at, sizeof(u->at), "%s:%u", file, line);
	return true;
}

/* dmn_conf_dir - see daemon.h */
bool
dmn_conf_dir(const char *name, const char *path, const char *key,
    const char *value, const char *file)
{
	char dir[PATH_MAX], *slash;
	struct stat sb;
	int e;

	strlcpy(dir, file, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir ? 1 : 0] = '\0';
	if ((e = stat(dir, &sb) != 0 ? errno : 0) == 0 && S_ISDIR(sb.st_mode))
		return true;
	fprintf(stderr, "%s: %s: %s %s: directory %s: %s\n", name, path, key,
	    value, dir, e != 0 ? strerror(e) : "not a directory");
	return false;
}

/* dmn_conf_check - see daemon.h */
int
dmn_conf_check(const char *name, const char *path,
    const struct danests_config *core, const char *const *listen,
    size_t nlisten, const struct dmn_conf_user *u, dmn_check_fn *check,
    void *arg)
{
	char why[1024], note[256];
	size_t i;

	for (i = 0; i < nlisten; i++)
		if (strncmp(listen[i], "unix:", 5) == 0 && !dmn_conf_dir(name,
		    path, "listen", listen[i], listen[i] + 5))
			return 78;
	if (danests_config_check_as(core, u->name, u->at[0] != '\0' ? u->at :
	    path, note, sizeof(note), why, sizeof(why)) != DANESTS_OK ||
	    (check != NULL && !check(arg, why, sizeof(why)))) {
		fprintf(stderr, "%s: %s\n", name, why);
		return 78;	/* EX_CONFIG */
	}
	if (note[0] != '\0')
		fprintf(stderr, "%s: note: %s\n", name, note);
	return 0;
}
