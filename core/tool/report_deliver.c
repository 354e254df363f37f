/*
 * report_deliver.c - hand a TLS report over (RFC 8460 5.3 mailto:, 5.4
 * https:)
 *
 * mailto: the local MTA's sendmail interface, run directly (fork and
 * exec, no shell) as "SENDMAIL -i -f FROM -- RCPT": the recipient comes
 * from DNS and never reaches a shell or an option.  It runs in its own
 * process group, bounded by report_timeout: when the time is up the whole
 * group is killed and the send counts as failed.  Exit status 0 is
 * success; anything else (and the first line it wrote to stderr) is a
 * failure to retry.
 *
 * https: one POST with libcurl, Content-Type application/tlsrpt+gzip
 * (RFC 8460 5.4), the server authenticated with PKIX (ca_file, else the
 * system store), redirects never followed, connection and transfer
 * bounded by report_timeout.  Only a 2xx answer is success.  The host's
 * addresses come from danests' own resolver (pinned with CURLOPT_RESOLVE).
 */
#include "report_mail.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ERR_MAX		200	/* bytes of sendmail's stderr kept */
#define BODY_MAX	65536	/* bytes of an https answer read */

/* now_ms - a monotonic clock in milliseconds */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* reap - wait for pid until deadline; its status, or -1 when time ran
 * out (it is then killed with its group, and reaped) */
static int
reap(pid_t pid, long long deadline, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return 0;	/* not ours any more */
		if (now_ms() >= deadline)
			break;
		usleep(20000);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

/* report_sendmail - see report_mail.h */
int
report_sendmail(const char *sendmail, const char *from, const char *rcpt,
    const char *msg, size_t len, unsigned timeout_s, char *why,
    size_t whylen)
{
	char err[ERR_MAX + 1], *nl;
	int in[2], errp[2], status = 0, devnull;
	size_t off = 0, elen = 0;
	long long deadline;
	struct pollfd pf[2];
	bool timed_out = false;
	ssize_t n;
	pid_t pid;

	if (!report_addr_ok(from) || !report_addr_ok(rcpt)) {
		snprintf(why, whylen, "unusable address");
		return -1;
	}
	if (sendmail == NULL || sendmail[0] != '/') {
		snprintf(why, whylen, "report_sendmail is not an absolute "
		    "path");
		return -1;
	}
	if (pipe2(in, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(errp, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	deadline = now_ms() + (long long)timeout_s * 1000;
	if ((pid = fork()) < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		close(errp[0]);
		close(errp[1]);
		return -1;
	}
	if (pid == 0) {
		/* child: its own group, so that a timeout kills its
		 * helpers too; stdin the message, stdout nowhere */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		devnull = open("/dev/null", O_WRONLY);
		if (dup2(in[0], 0) < 0 || dup2(errp[1], 2) < 0 ||
		    devnull < 0 || dup2(devnull, 1) < 0)
			_exit(127);
		execl(sendmail, sendmail, "-i", "-f", from, "--", rcpt,
		    (char *)NULL);
		dprintf(2, "cannot run %s: %s\n", sendmail, strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);	/* also here: no race with kill(-pid) */
	close(in[0]);
	close(errp[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);

	/* write the message while collecting stderr; stop at the deadline */
	pf[0].fd = in[1];
	pf[1].fd = errp[0];
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		long long left = deadline - now_ms();

		if (left <= 0) {
			timed_out = true;
			break;
		}
		pf[0].events = POLLOUT;
		pf[1].events = POLLIN;
		if (poll(pf, 2, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			break;
		if (pf[0].fd >= 0 && (pf[0].revents & (POLLOUT | POLLERR |
		    POLLHUP))) {
			n = write(in[1], msg + off, len - off);
			if (n > 0)
				off += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
			    off == len) {
				close(in[1]);
				pf[0].fd = -1;
			}
		}
		if (pf[1].fd >= 0 && (pf[1].revents & (POLLIN | POLLERR |
		    POLLHUP))) {
			char buf[512];

			n = read(errp[0], buf, sizeof(buf));
			if (n > 0 && elen < ERR_MAX) {
				size_t k = (size_t)n < ERR_MAX - elen ?
				    (size_t)n : ERR_MAX - elen;

				memcpy(err + elen, buf, k);
				elen += k;
			}
			if (n == 0 || (n < 0 && errno != EAGAIN &&
			    errno != EINTR)) {
				close(errp[0]);
				pf[1].fd = -1;
			}
		}
	}
	if (pf[0].fd >= 0)
		close(in[1]);
	if (pf[1].fd >= 0)
		close(errp[0]);
	if (timed_out)
		deadline = now_ms();
	err[elen] = '\0';
	if ((nl = strchr(err, '\n')) != NULL)
		*nl = '\0';
	for (nl = err; *nl; nl++)
		if ((unsigned char)*nl < 0x20 || *nl == 0x7f)
			*nl = '?';
	if (reap(pid, deadline, &status) != 0) {
		snprintf(why, whylen, "%s: no answer within %u s, killed",
		    sendmail, timeout_s);
		return -1;
	}
	if (off != len) {
		snprintf(why, whylen, "%s: took %zu of %zu bytes%s%s",
		    sendmail, off, len, elen ? ": " : "", err);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(why, whylen, "%s: exit status %d%s%s", sendmail,
		    WEXITSTATUS(status), elen ? ": " : "", err);
	else
		snprintf(why, whylen, "%s: killed by signal %d%s%s", sendmail,
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0,
		    elen ? ": " : "", err);
	return -1;
}

/* report_url_host - see report_mail.h */
int
report_url_host(const char *url, char *host, size_t hostlen, unsigned *port)
{
	char *h = NULL, *p = NULL, *s = NULL, *u = NULL, *f = NULL;
	unsigned long n = 443;
	CURLU *cu;
	int rc = -1;

	if (url == NULL || strncasecmp(url, "https://", 8) != 0 ||
	    url[8] == '/' || url[8] == '\0' ||
	    strlen(url) > 2048 || (cu = curl_url()) == NULL)
		return -1;
	if (curl_url_set(cu, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(cu, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    strcasecmp(s, "https") != 0 ||
	    curl_url_get(cu, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(cu, CURLUPART_USER, &u, 0) != CURLUE_NO_USER ||
	    curl_url_get(cu, CURLUPART_FRAGMENT, &f, 0) !=
	    CURLUE_NO_FRAGMENT || !report_domain_ok(h) ||
	    strlen(h) >= hostlen)
		goto out;
	if (curl_url_get(cu, CURLUPART_PORT, &p, 0) == CURLUE_OK) {
		n = strtoul(p, NULL, 10);
		if (n == 0 || n > 65535)
			goto out;
	}
	strcpy(host, h);
	*port = (unsigned)n;
	rc = 0;
out:
	curl_free(h);
	curl_free(p);
	curl_free(s);
	curl_free(u);
	curl_free(f);
	curl_url_cleanup(cu);
	return rc;
}

/* discard - the answer's body is read (bounded) and dropped */
static size_t
discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	size_t *seen = arg;

	(void)ptr;
	*seen += size * nmemb;
	return *seen > BODY_MAX ? 0 : size * nmemb;
}

/* report_post - see report_mail.h */
int
report_post(const char *url, const char *addrs, const char *ca_file,
    const unsigned char *gz, size_t len, unsigned timeout_s, char *why,
    size_t whylen)
{
	char host[256], pin[2048], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL, *res = NULL, *h;
	size_t seen = 0;
	unsigned port;
	long code = 0;
	CURLcode cc;
	CURL *c;
	int rc = -1;

	if (report_url_host(url, host, sizeof(host), &port) != 0) {
		snprintf(why, whylen, "not a usable https URL");
		return -1;
	}
	if ((c = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "cannot start libcurl");
		return -1;
	}
	if (addrs != NULL) {
		if (snprintf(pin, sizeof(pin), "%s:%u:%s", host, port, addrs) >=
		    (int)sizeof(pin) || (res = curl_slist_append(NULL,
		    pin)) == NULL) {
			snprintf(why, whylen, "too many addresses");
			goto out;
		}
		curl_easy_setopt(c, CURLOPT_RESOLVE, res);
	}
	if ((hdr = curl_slist_append(NULL, "Content-Type: "
	    "application/tlsrpt+gzip")) == NULL ||
	    (h = curl_slist_append(hdr, "Expect:")) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	hdr = h;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file != NULL) {
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "danests-tlsrpt");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, gz);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen);
	if ((cc = curl_easy_perform(c)) != CURLE_OK &&
	    cc != CURLE_WRITE_ERROR) {
		snprintf(why, whylen, "%s", errbuf[0] ? errbuf :
		    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		snprintf(why, whylen, "HTTP status %ld", code);
		goto out;
	}
	rc = 0;
out:
	curl_slist_free_all(hdr);
	curl_slist_free_all(res);
	curl_easy_cleanup(c);
	return rc;
}
