/*
 * tlsrpt_peer.c - the sending side of Postfix's TLSRPT, driven through
 * libtlsrpt itself (the library Debian 13's Postfix 3.10 links with), for
 * the tests and the benchmark of the danests-postfix collector.  Built
 * against the distribution's libtlsrpt (tests/packages/tlsrpt.sh), never
 * against a copy of it.
 *
 *   tlsrpt_peer record DIR
 *	bind DIR/peer.sock, send each scenario below through libtlsrpt to
 *	it, and write each datagram as received to DIR/NAME.json
 *   tlsrpt_peer bench SOCKET COUNT DOMAINS
 *	send COUNT datagrams (the "sts-failure" and "sts-success" scenarios
 *	alternating, over DOMAINS domains d0.bench.test ...) to SOCKET in
 *	blocking mode, then print "sent N failed N seconds S rate R"
 *
 * The scenarios are what Postfix's smtp(8) sends (one policy, at most one
 * failure detail, the EHLO response whole) plus what the library allows
 * beyond it (several policies, several failure details, escaping).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tlsrpt.h>

#define REC "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"
#define EHLO "250-mx.sts-enforce.test\r\n250-PIPELINING\r\n250-SIZE 10240000" \
	"\r\n250-STARTTLS\r\n250 8BITMIME"

/* sts_policy - the MTA-STS policy of domain as Postfix passes it */
static int
sts_policy(struct tlsrpt_dr_t *dr, const char *domain, const char *mode)
{
	char line[300];
	int r;

	if ((r = tlsrpt_init_policy(dr, TLSRPT_POLICY_STS, domain)) != 0)
		return r;
	r = tlsrpt_add_policy_string(dr, "version: STSv1");
	snprintf(line, sizeof(line), "mode: %s", mode);
	if (r == 0)
		r = tlsrpt_add_policy_string(dr, line);
	snprintf(line, sizeof(line), "mx: mx.%s", domain);
	if (r == 0)
		r = tlsrpt_add_policy_string(dr, line);
	if (r == 0)
		r = tlsrpt_add_policy_string(dr, "max_age: 86400");
	snprintf(line, sizeof(line), "mx.%s", domain);
	if (r == 0)
		r = tlsrpt_add_mx_host_pattern(dr, line);
	return r;
}

/* scenario - one delivery request, as name says */
static int
scenario(struct tlsrpt_connection_t *con, const char *name,
    const char *domain)
{
	struct tlsrpt_dr_t *dr;
	int r;

	if ((r = tlsrpt_init_delivery_request(&dr, con, domain, REC)) != 0)
		return r;
	if (strcmp(name, "sts-success") == 0) {
		r = sts_policy(dr, domain, "enforce");
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_SUCCESS);
	} else if (strcmp(name, "sts-failure") == 0) {
		r = sts_policy(dr, domain, "enforce");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_CERTIFICATE_HOST_MISMATCH, "127.0.0.1",
			    "mx.sts-certbad.test", EHLO, "127.10.2.5", NULL,
			    "server certificate not verified");
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else if (strcmp(name, "sts-starttls") == 0) {
		r = sts_policy(dr, domain, "testing");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_STARTTLS_NOT_SUPPORTED, "::1",
			    "mx.sts-testing.test", "250 mx.sts-testing.test",
			    "2001:db8::25", NULL, NULL);
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else if (strcmp(name, "tlsa-success") == 0) {
		r = tlsrpt_init_policy(dr, TLSRPT_POLICY_TLSA,
		    "mx.dane-ee.test");
		if (r == 0)
			r = tlsrpt_add_policy_string(dr, "3 1 1 "
			    "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514"
			    "B56664C5D3D6");
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_SUCCESS);
	} else if (strcmp(name, "tlsa-failure") == 0) {
		r = tlsrpt_init_policy(dr, TLSRPT_POLICY_TLSA,
		    "mx.dane-mismatch.test");
		if (r == 0)
			r = tlsrpt_add_policy_string(dr, "3 1 1 "
			    "1111111111111111111111111111111111111111111111111111"
			    "111111111111");
		if (r == 0)
			r = tlsrpt_add_policy_string(dr, "2 0 1 "
			    "2222222222222222222222222222222222222222222222222222"
			    "222222222222");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_VALIDATION_FAILURE, "127.0.0.1",
			    "mx.dane-mismatch.test", EHLO, "127.10.2.3", NULL,
			    "TLSA records do not match");
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else if (strcmp(name, "no-policy") == 0) {
		r = tlsrpt_init_policy(dr, TLSRPT_NO_POLICY_FOUND, NULL);
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_SUCCESS);
	} else if (strcmp(name, "two-details") == 0) {
		r = sts_policy(dr, domain, "testing");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_STS_POLICY_INVALID, "192.0.2.1",
			    "mx.example.test", "250 mx.example.test",
			    "192.0.2.25", "https://example.test/why",
			    "999 TEST REASON");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_STS_WEBPKI_INVALID, "192.0.2.1",
			    "mx.example.test", NULL, "192.0.2.25", NULL, NULL);
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else if (strcmp(name, "two-policies") == 0) {
		r = tlsrpt_init_policy(dr, TLSRPT_NO_POLICY_FOUND, NULL);
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_SUCCESS);
		if (r == 0)
			r = sts_policy(dr, domain, "enforce");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_STS_POLICY_FETCH_ERROR, "127.0.0.1", NULL,
			    NULL, NULL, NULL, NULL);
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else if (strcmp(name, "escaped") == 0) {
		r = sts_policy(dr, domain, "enforce");
		if (r == 0)
			r = tlsrpt_add_delivery_request_failure(dr,
			    TLSRPT_CERTIFICATE_EXPIRED, "127.0.0.1",
			    "mx.example.test", "250 mx.example.test",
			    "127.10.2.9", NULL,
			    "\"quoted\" \\ back\\slash, caf\xc3\xa9\tand a tab");
		if (r == 0)
			r = tlsrpt_finish_policy(dr, TLSRPT_FINAL_FAILURE);
	} else {
		fprintf(stderr, "tlsrpt_peer: unknown scenario %s\n", name);
		tlsrpt_cancel_delivery_request(&dr);
		return -1;
	}
	if (r != 0) {
		tlsrpt_cancel_delivery_request(&dr);
		return r;
	}
	return tlsrpt_finish_delivery_request(&dr);
}

static const struct {
	const char *name, *domain;
} scenarios[] = {
	{ "sts-success", "sts-enforce.test" },
	{ "sts-failure", "sts-certbad.test" },
	{ "sts-starttls", "sts-testing.test" },
	{ "tlsa-success", "dane-ee.test" },
	{ "tlsa-failure", "dane-mismatch.test" },
	{ "no-policy", "insecure.test" },
	{ "two-details", "example.test" },
	{ "two-policies", "example.test" },
	{ "escaped", "Example.TEST." },
};

/* record - each scenario through libtlsrpt into DIR/NAME.json */
static int
record(const char *dir)
{
	struct tlsrpt_connection_t *con;
	struct sockaddr_un sun;
	static char buf[70000];
	char path[4096];
	size_t i;
	ssize_t n;
	FILE *f;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/peer.sock", dir);
	(void)unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		perror("tlsrpt_peer: socket");
		return 1;
	}
	if ((r = tlsrpt_open(&con, sun.sun_path)) != 0) {
		fprintf(stderr, "tlsrpt_peer: %s\n", tlsrpt_strerror(r));
		return 1;
	}
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if ((r = scenario(con, scenarios[i].name,
		    scenarios[i].domain)) != 0) {
			fprintf(stderr, "tlsrpt_peer: %s: %s\n",
			    scenarios[i].name, tlsrpt_strerror(r));
			return 1;
		}
		if ((n = recv(fd, buf, sizeof(buf), 0)) < 0) {
			perror("tlsrpt_peer: recv");
			return 1;
		}
		snprintf(path, sizeof(path), "%s/%s.json", dir,
		    scenarios[i].name);
		if ((f = fopen(path, "w")) == NULL ||
		    fwrite(buf, 1, (size_t)n, f) != (size_t)n ||
		    fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	tlsrpt_close(&con);
	close(fd);
	unlink(sun.sun_path);
	return 0;
}

/* bench - COUNT datagrams to sock, blocking, as fast as they go */
static int
bench(const char *sock, long count, long ndomains)
{
	struct tlsrpt_connection_t *con;
	struct timespec t0, t1;
	char domain[64];
	long i, failed = 0;
	double s;
	int r;

	if ((r = tlsrpt_open(&con, sock)) != 0) {
		fprintf(stderr, "tlsrpt_peer: %s\n", tlsrpt_strerror(r));
		return 1;
	}
	tlsrpt_set_blocking();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++) {
		snprintf(domain, sizeof(domain), "d%ld.bench.test",
		    i % ndomains);
		if (scenario(con, i % 2 ? "sts-success" : "sts-failure",
		    domain) != 0)
			failed++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("sent %ld failed %ld seconds %.3f rate %.0f\n", count - failed,
	    failed, s, s > 0 ? (double)(count - failed) / s : 0.0);
	tlsrpt_close(&con);
	return failed != 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "record") == 0)
		return record(argv[2]);
	if (argc == 5 && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], atol(argv[3]), atol(argv[4]) > 0 ?
		    atol(argv[4]) : 1);
	fprintf(stderr, "usage: tlsrpt_peer record DIR | "
	    "bench SOCKET COUNT DOMAINS\n");
	return 2;
}
