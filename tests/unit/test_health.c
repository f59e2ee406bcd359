/* lib/health.c: target parsing, what healthy means, and the event loop
 * against sockets the test listens on. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcode.h"
#include "health.h"
#include "testutil.h"

static void
target_init(struct chom_target *t)
{
	memset(t, 0, sizeof(*t));
	t->cert_min_days = -1;
	t->interval = 0.05;
	t->timeout = 2;
}

static void
test_parse_kinds_and_ports(void **state)
{
	struct chom_target t;
	struct chom_err e = { 0 };

	(void)state;
	target_init(&t);
	assert_int_equal(chom_target_parse(&t, "https://example.org/up", &e),
			 0);
	assert_int_equal(t.kind, CHOM_TARGET_HTTP);
	assert_string_equal(t.host, "example.org");
	assert_string_equal(t.port, "443");
	assert_int_equal(chom_target_parse(&t, "http://[::1]:8080/x", &e), 0);
	assert_string_equal(t.host, "::1");
	assert_string_equal(t.port, "8080");
	assert_int_equal(chom_target_parse(&t, "redis://10.0.0.5", &e), 0);
	assert_int_equal(t.kind, CHOM_TARGET_REDIS);
	assert_string_equal(t.port, "6379");
	assert_int_equal(chom_target_parse(&t, "mysql://db:3307", &e), 0);
	assert_int_equal(t.kind, CHOM_TARGET_MYSQL);
	assert_string_equal(t.port, "3307");
	assert_int_equal(chom_target_parse(&t, "tcp://db:5432", &e), 0);
	assert_int_equal(t.kind, CHOM_TARGET_TCP);
}

static void
test_parse_refusals(void **state)
{
	static const char *const bad[] = {
		"ftp://x/",          "tcp://host",      "http://:80/",
		"http://h:0/",       "http://h:99999/", "http://h:8x/",
		"redis://user:pw@h", "example.org",     "http://[::1/",
	};
	struct chom_target t;
	struct chom_err e = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		target_init(&t);
		if (chom_target_parse(&t, bad[i], &e) != -1)
			TU_FAILF("'%s' accepted", bad[i]);
		assert_int_equal(e.code, CHOM_EXIT_USAGE);
	}
}

static void
test_status_lists(void **state)
{
	struct chom_target t;
	struct chom_err e = { 0 };

	(void)state;
	target_init(&t);
	assert_int_equal(chom_target_set_status(&t, "200-299,301,418", &e), 0);
	assert_int_equal(t.nstatus, 3);
	assert_int_equal(t.status_lo[0], 200);
	assert_int_equal(t.status_hi[0], 299);
	assert_int_equal(t.status_lo[2], 418);
	assert_int_equal(chom_target_set_status(&t, "", &e), -1);
	assert_int_equal(chom_target_set_status(&t, "299-200", &e), -1);
	assert_int_equal(chom_target_set_status(&t, "2xx", &e), -1);
	assert_int_equal(chom_target_set_status(&t, "200,", &e), 0);
	assert_int_equal(chom_target_set_status(&t, "99", &e), -1);
}

static void
test_body_regex(void **state)
{
	struct chom_target t;
	struct chom_err e = { 0 };

	(void)state;
	target_init(&t);
	assert_int_equal(chom_target_set_body(&t, "ok|ready", &e), 0);
	assert_int_equal(chom_target_set_body(&t, "(unclosed", &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_string_equal(t.body_src, "");
	assert_int_equal(chom_target_set_body(&t, "^v[0-9]+$", &e), 0);
	chom_target_free(&t);
}

static void
test_json_paths(void **state)
{
	static const char doc[] = "{\"status\":\"ok\",\"db\":{\"up\":true,"
				  "\"lag\":0},\"items\":[{\"n\":\"a\"},"
				  "{\"n\":\"b\"}],\"v\":1.5,\"x\":null}";
	char why[256];

	(void)state;
	assert_true(chom_health_json_match(doc, strlen(doc), "status", "ok",
					   why, sizeof(why)));
	assert_true(chom_health_json_match(doc, strlen(doc), "db.up", "true",
					   why, sizeof(why)));
	assert_true(chom_health_json_match(doc, strlen(doc), "db.lag", "0", why,
					   sizeof(why)));
	assert_true(chom_health_json_match(doc, strlen(doc), "items.1.n", "b",
					   why, sizeof(why)));
	assert_true(chom_health_json_match(doc, strlen(doc), "v", "1.5", why,
					   sizeof(why)));
	assert_true(chom_health_json_match(doc, strlen(doc), "x", "null", why,
					   sizeof(why)));
	assert_false(chom_health_json_match(doc, strlen(doc), "status", "down",
					    why, sizeof(why)));
	assert_non_null(strstr(why, "status is ok"));
	assert_false(chom_health_json_match(doc, strlen(doc), "items.2.n", "b",
					    why, sizeof(why)));
	assert_non_null(strstr(why, "no items.2.n"));
	assert_false(chom_health_json_match(doc, strlen(doc), "db.up", "1", why,
					    sizeof(why)));
	assert_false(
	    chom_health_json_match("<html>", 6, "a", "b", why, sizeof(why)));
	assert_non_null(strstr(why, "not JSON"));
	{
		struct chom_target t;
		struct chom_err e = { 0 };

		target_init(&t);
		assert_int_equal(chom_target_set_json(&t, "=x", &e), -1);
		assert_int_equal(chom_target_set_json(&t, "nox", &e), -1);
		assert_int_equal(chom_target_set_json(&t, "a.b=", &e), 0);
		assert_string_equal(t.json_path, "a.b");
		assert_string_equal(t.json_value, "");
	}
}

/* A listener on 127.0.0.1; its port in *port. */
static int
listen_any(char *port, size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		fail_msg("listen");
	snprintf(port, size, "%d", ntohs(a.sin_port));
	return fd;
}

/* A child that answers each connection with `reply` and closes it. */
static pid_t
serve(int fd, const void *reply, size_t len)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;) {
			int c = accept(fd, NULL, NULL);

			if (c < 0)
				_exit(0);
			if (write(c, reply, len) < 0)
				_exit(1);
			close(c);
		}
	}
	return pid;
}

static void
run_one(struct chom_target *t, const char *url)
{
	struct chom_err e = { 0 };

	assert_int_equal(chom_target_parse(t, url, &e), 0);
	assert_int_equal(chom_health_run(t, 1, 0, 5, NULL, &e), 0);
}

static void
test_tcp_and_refused(void **state)
{
	struct chom_target t[2];
	struct chom_err e = { 0 };
	char port[8], url[64];
	int fd = listen_any(port, sizeof(port));

	(void)state;
	target_init(&t[0]);
	target_init(&t[1]);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%s", port);
	assert_int_equal(chom_target_parse(&t[0], url, &e), 0);
	/* A port nothing listens on: the listener's, once closed. */
	close(fd);
	fd = listen_any(port, sizeof(port));
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%s", port);
	assert_int_equal(chom_target_parse(&t[1], url, &e), 0);
	close(fd);
	t[1].retries = 2;
	assert_int_equal(chom_health_run(t, 2, 0, 10, NULL, &e), 0);
	assert_false(t[0].ok); /* its listener closed too */
	assert_false(t[1].ok);
	assert_non_null(strstr(t[1].reason, "refused"));
	assert_int_equal(t[1].attempts, 3);
}

static void
test_mysql_greeting_and_error(void **state)
{
	/* A protocol-10 handshake: length, sequence, 0x0a, version, NUL. */
	static const unsigned char hello[] = "\x14\x00\x00\x00\x0a"
					     "10.11.6-MariaDB\0\x01\x02\x03";
	static const unsigned char full[] = "\x17\x00\x00\x00\xff\x10\x04"
					    "Too many connections";
	struct chom_target t;
	char port[8], url[64];
	pid_t pid;
	int fd;

	(void)state;
	fd = listen_any(port, sizeof(port));
	pid = serve(fd, hello, sizeof(hello) - 1);
	target_init(&t);
	snprintf(url, sizeof(url), "mysql://127.0.0.1:%s", port);
	run_one(&t, url);
	tu_reap(&pid);
	close(fd);
	assert_true(t.ok);
	assert_non_null(strstr(t.reason, "10.11.6-MariaDB"));

	fd = listen_any(port, sizeof(port));
	pid = serve(fd, full, sizeof(full) - 1);
	target_init(&t);
	snprintf(url, sizeof(url), "mysql://127.0.0.1:%s", port);
	run_one(&t, url);
	tu_reap(&pid);
	close(fd);
	assert_false(t.ok);
	assert_non_null(strstr(t.reason, "1040"));
	assert_non_null(strstr(t.reason, "Too many connections"));
}

static void
test_redis_replies(void **state)
{
	struct chom_target t;
	char port[8], url[64];
	pid_t pid;
	int fd;

	(void)state;
	fd = listen_any(port, sizeof(port));
	pid = serve(fd, "+PONG\r\n", 7);
	target_init(&t);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%s", port);
	run_one(&t, url);
	tu_reap(&pid);
	close(fd);
	assert_true(t.ok);

	fd = listen_any(port, sizeof(port));
	pid = serve(fd, "-NOAUTH Authentication required.\r\n", 34);
	target_init(&t);
	t.retries = 5;
	snprintf(url, sizeof(url), "redis://127.0.0.1:%s", port);
	run_one(&t, url);
	tu_reap(&pid);
	close(fd);
	assert_false(t.ok);
	assert_int_equal(t.attempts, 1); /* a password problem is not retried */
	assert_non_null(strstr(t.reason, "NOAUTH"));
}

static void
test_deadline_bounds_retries(void **state)
{
	struct chom_target t;
	struct chom_err e = { 0 };
	char port[8], url[64];
	int fd = listen_any(port, sizeof(port));

	(void)state;
	close(fd);
	target_init(&t);
	t.retries = -1;
	t.interval = 0.1;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%s", port);
	assert_int_equal(chom_target_parse(&t, url, &e), 0);
	assert_int_equal(chom_health_run(&t, 1, 0, 0.5, NULL, &e), 0);
	assert_false(t.ok);
	assert_in_range(t.attempts, 2, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kinds_and_ports),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_status_lists),
		cmocka_unit_test(test_body_regex),
		cmocka_unit_test(test_json_paths),
		cmocka_unit_test(test_tcp_and_refused),
		cmocka_unit_test(test_mysql_greeting_and_error),
		cmocka_unit_test(test_redis_replies),
		cmocka_unit_test(test_deadline_bounds_retries),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
