/*
 * Unit tests for the clamd client against a real, private clamd: the test
 * writes a hash signature for a sample of its own (md5:size:name, what
 * `sigtool --md5` prints), a clamd.conf with a unix socket in a temp dir,
 * starts clamd in the foreground, scans, and stops it by its PID. No
 * signature is downloaded; nothing listens beyond the temp dir and
 * loopback. A fake clamd on 127.0.0.1 covers TCP, chunking and timeouts.
 *
 * Without clamd installed the test fails and says so.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "mail/clamd.h"

static const char SAMPLE[] = "MAMORI-TEST-MALWARE-SAMPLE-0001 (not a virus)";
static char dir[64];
static char sock[128];
static pid_t clamd_pid = -1;

static const char *find_clamd(void)
{
	static const char *const cand[] = {"/usr/sbin/clamd", "/usr/bin/clamd",
					   "/usr/local/sbin/clamd"};
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (access(cand[i], X_OK) == 0)
			return cand[i];
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[256], text[1024];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned ml;
	(void)state;

	const char *bin = find_clamd();
	if (!bin) {
		fprintf(stderr, "test_clamd: clamd is not installed (Debian package "
				"clamav-daemon); this test needs it\n");
		return -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/mamori-clamd-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/db", dir);
	mkdir(path, 0700);
	/* the signature: md5:size:name */
	EVP_Digest(SAMPLE, strlen(SAMPLE), md, &ml, EVP_md5(), NULL);
	char hex[33];
	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(text, sizeof(text), "%s:%zu:Mamori.Test.Sample\n", hex,
		 strlen(SAMPLE));
	snprintf(path, sizeof(path), "%s/db/test.hdb", dir);
	write_file(path, text);
	snprintf(sock, sizeof(sock), "%s/clamd.sock", dir);
	snprintf(text, sizeof(text),
		 "LocalSocket %s\nDatabaseDirectory %s/db\nForeground yes\n"
		 "LogSyslog no\nLogFile %s/clamd.log\nStreamMaxLength 1M\n"
		 "MaxThreads 4\n",
		 sock, dir, dir);
	snprintf(path, sizeof(path), "%s/clamd.conf", dir);
	write_file(path, text);

	clamd_pid = fork();
	if (clamd_pid < 0)
		return -1;
	if (clamd_pid == 0) {
		char out[256];
		snprintf(out, sizeof(out), "%s/stdout", dir);
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, "clamd", "-c", path, (char *)NULL);
		_exit(127);
	}
	/* wait for the socket to answer PING (loading takes a second) */
	struct clamd_cfg cfg = {.addr = sock, .connect_timeout_ms = 500,
				.io_timeout_ms = 2000};
	char err[160];
	for (int i = 0; i < 600; i++) {
		if (access(sock, F_OK) == 0 && clamd_ping(&cfg, err, sizeof(err)) == 0)
			return 0;
		int st;
		if (waitpid(clamd_pid, &st, WNOHANG) == clamd_pid) {
			fprintf(stderr, "test_clamd: clamd exited; see %s/stdout\n", dir);
			clamd_pid = -1;
			return -1;
		}
		usleep(100 * 1000);
	}
	fprintf(stderr, "test_clamd: clamd did not come up in 60 s\n");
	return -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	if (clamd_pid > 0) {
		kill(clamd_pid, SIGTERM);
		int st;
		for (int i = 0; i < 100 && waitpid(clamd_pid, &st, WNOHANG) == 0; i++)
			usleep(50 * 1000);
		kill(clamd_pid, SIGKILL);
		waitpid(clamd_pid, &st, 0);
	}
	static const char *const files[] = {"db/test.hdb", "clamd.conf", "clamd.log",
					    "stdout", "clamd.sock"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s/%s", dir, files[i]);
		unlink(cmd);
	}
	snprintf(cmd, sizeof(cmd), "%s/db", dir);
	rmdir(cmd);
	rmdir(dir);
	return 0;
}

static void test_ping_version(void **state)
{
	struct clamd_cfg cfg = {.addr = sock};
	char buf[256];
	(void)state;
	assert_int_equal(clamd_ping(&cfg, buf, sizeof(buf)), 0);
	assert_int_equal(clamd_version(&cfg, buf, sizeof(buf)), 0);
	assert_true(strncmp(buf, "ClamAV ", 7) == 0);
	char unix_addr[160];
	snprintf(unix_addr, sizeof(unix_addr), "unix:%s", sock);
	cfg.addr = unix_addr;
	assert_int_equal(clamd_ping(&cfg, buf, sizeof(buf)), 0);
}

static void test_scan(void **state)
{
	struct clamd_cfg cfg = {.addr = sock, .chunk = 7};
	struct clamd_result r;
	(void)state;

	/* the sample, sent in 7-byte chunks */
	assert_int_equal(clamd_scan(&cfg, SAMPLE, strlen(SAMPLE), &r), CLAMD_INFECTED);
	if (strncmp(r.name, "Mamori.Test.Sample", 18) != 0)
		fail_msg("signature '%s'", r.name);
	cfg.chunk = 0;
	assert_int_equal(clamd_scan(&cfg, SAMPLE, strlen(SAMPLE), &r), CLAMD_INFECTED);

	/* clean data, and nothing at all */
	static const char clean[] = "just a harmless text attachment\n";
	assert_int_equal(clamd_scan(&cfg, clean, sizeof(clean) - 1, &r), CLAMD_CLEAN);
	assert_string_equal(r.name, "");
	assert_int_equal(clamd_scan(&cfg, "", 0, &r), CLAMD_CLEAN);

	/* over clamd's StreamMaxLength (1M): its own answer */
	size_t big = 3u * 1024 * 1024;
	char *b = calloc(1, big);
	assert_non_null(b);
	assert_int_equal(clamd_scan(&cfg, b, big, &r), CLAMD_TOOBIG);
	assert_non_null(strstr(r.err, "size limit"));
	/* over our own limit: refused without a connection */
	cfg.max_stream = 1000;
	assert_int_equal(clamd_scan(&cfg, b, 2000, &r), CLAMD_TOOBIG);
	free(b);
	/* clamd still answers afterwards */
	cfg.max_stream = 0;
	assert_int_equal(clamd_scan(&cfg, SAMPLE, strlen(SAMPLE), &r), CLAMD_INFECTED);
}

static void test_errors(void **state)
{
	struct clamd_result r;
	char path[160], err[160];
	(void)state;

	snprintf(path, sizeof(path), "%s/nothing.sock", dir);
	struct clamd_cfg cfg = {.addr = path};
	assert_int_equal(clamd_scan(&cfg, "x", 1, &r), CLAMD_ERROR);
	assert_true(r.err[0] != '\0');
	assert_true(clamd_ping(&cfg, err, sizeof(err)) < 0);

	static const char *const bad[] = {"", "no-port", "[::1", "tcp:", NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.addr = bad[i];
		assert_int_equal(clamd_scan(&cfg, "x", 1, &r), CLAMD_ERROR);
	}

	/* a socket that accepts and never answers: a timeout, not a hang */
	snprintf(path, sizeof(path), "%s/silent.sock", dir);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	memcpy(su.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(ls, (struct sockaddr *)&su, sizeof(su)), 0);
	assert_int_equal(listen(ls, 4), 0);
	cfg.addr = path;
	cfg.io_timeout_ms = 300;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(clamd_scan(&cfg, "x", 1, &r), CLAMD_ERROR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(strstr(r.err, "timed out"));
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	close(ls);
	unlink(path);
}

/* ---- a fake clamd on TCP loopback: checks the framing it receives ---- */

struct fake {
	int ls;
	const char *answer;
	size_t got;      /* stream bytes received */
	int chunks;
	int framing_ok;
};

static int read_n(int fd, void *p, size_t n)
{
	char *b = p;
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->ls, NULL, NULL);
	char cmd[10];
	if (c < 0)
		return NULL;
	if (read_n(c, cmd, 10) == 0 && memcmp(cmd, "zINSTREAM", 10) == 0) {
		for (;;) {
			unsigned char h[4], buf[4096];
			if (read_n(c, h, 4))
				break;
			uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
				     (uint32_t)h[2] << 8 | h[3];
			if (n == 0) {
				f->framing_ok = 1;
				break;
			}
			if (n > sizeof(buf) || read_n(c, buf, n))
				break;
			f->got += n;
			f->chunks++;
		}
	}
	if (write(c, f->answer, strlen(f->answer) + 1) < 0)
		f->framing_ok = 0;
	close(c);
	return NULL;
}

static void test_tcp_fake(void **state)
{
	static const struct {
		const char *answer;
		enum clamd_status st;
		const char *name;
	} tc[] = {
		{"stream: OK", CLAMD_CLEAN, ""},
		{"stream: Win.Test.EICAR_HDB-1 FOUND", CLAMD_INFECTED,
		 "Win.Test.EICAR_HDB-1"},
		{"stream: Odd: Name With Spaces FOUND", CLAMD_INFECTED,
		 "Odd: Name With Spaces"},
		{"INSTREAM size limit exceeded. ERROR", CLAMD_TOOBIG, ""},
		{"stream: Can't allocate memory ERROR", CLAMD_ERROR, ""},
		{"garbage", CLAMD_ERROR, ""},
	};
	char data[10000];
	(void)state;
	memset(data, 'a', sizeof(data));
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		struct fake f = {.answer = tc[i].answer};
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f.ls = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(f.ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(listen(f.ls, 1), 0);
		getsockname(f.ls, (struct sockaddr *)&sa, &sl);
		pthread_t th;
		pthread_create(&th, NULL, fake_main, &f);
		char addr[64];
		snprintf(addr, sizeof(addr), "%s127.0.0.1:%u", i % 2 ? "tcp:" : "",
			 ntohs(sa.sin_port));
		struct clamd_cfg cfg = {.addr = addr, .chunk = 4096, .io_timeout_ms = 5000};
		struct clamd_result r;
		enum clamd_status st = clamd_scan(&cfg, data, sizeof(data), &r);
		pthread_join(th, NULL);
		close(f.ls);
		if (st != tc[i].st || strcmp(r.name, tc[i].name) != 0)
			fail_msg("case %zu: status %d name '%s' err '%s'", i, st, r.name,
				 r.err);
		assert_true(f.framing_ok);
		assert_int_equal(f.got, sizeof(data));
		assert_int_equal(f.chunks, 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_version),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tcp_fake),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
