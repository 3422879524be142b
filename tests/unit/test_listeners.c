/*
 * End-to-end tests of the ingest listeners: a real pipeline over a small
 * fake store (this file's struct store_ops, which keeps what it is given),
 * listeners on 127.0.0.1 port 0, and real senders: UDP datagrams, TCP with
 * LF and octet-counted framing, TLS (with a throwaway self-signed
 * certificate made here), and a followed file that is appended to, rotated
 * and truncated. Each test stops ingest and drains the pipeline before it
 * counts, so the counts are exact: nothing lost, nothing twice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "core/event.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "ingest/ingest.h"
#include "store/store.h"

/* ---- a fake store that keeps what it gets ------------------------------ */

#define KEEP_MAX 4096

struct kept {
	char *orig;          /* event.original */
	char *peer;          /* log.source.address */
	char *host;          /* log.syslog.hostname */
	char *eve_type;      /* suricata.eve.event_type */
	uint16_t parse_error;
	uint32_t flags;
};

struct fake_store {
	struct store base;
	pthread_mutex_t mu;
	struct kept kept[KEEP_MAX];
	size_t n_kept;
	size_t total;
	int delay_ms;        /* per batch: a slow store for backpressure */
};

static struct fake_store fk;

static char *dup_str(struct str s)
{
	char *p;

	if (!s.p)
		return NULL;
	p = malloc(s.n + 1);
	assert_non_null(p);
	memcpy(p, s.p, s.n);
	p[s.n] = '\0';
	return p;
}

static int fake_write(struct store *s, uint64_t batch_id,
		      const struct event *ev, size_t n)
{
	(void)s;
	(void)batch_id;
	if (fk.delay_ms)
		usleep((useconds_t)fk.delay_ms * 1000);
	pthread_mutex_lock(&fk.mu);
	for (size_t i = 0; i < n; i++) {
		if (fk.n_kept < KEEP_MAX) {
			struct kept *k = &fk.kept[fk.n_kept++];

			k->orig = dup_str(event_get(&ev[i], F_EVENT_ORIGINAL));
			k->peer = dup_str(event_get(&ev[i], F_LOG_SOURCE_ADDRESS));
			k->host = dup_str(event_get(&ev[i],
						    F_LOG_SYSLOG_HOSTNAME));
			k->eve_type = dup_str(event_get(&ev[i],
						F_SURICATA_EVE_EVENT_TYPE));
			k->parse_error = ev[i].parse_error;
			k->flags = ev[i].flags;
		}
		fk.total++;
	}
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.write_batch = fake_write,
};

static size_t fake_total(void)
{
	size_t n;

	pthread_mutex_lock(&fk.mu);
	n = fk.total;
	pthread_mutex_unlock(&fk.mu);
	return n;
}

static void fake_reset(void)
{
	for (size_t i = 0; i < fk.n_kept; i++) {
		free(fk.kept[i].orig);
		free(fk.kept[i].peer);
		free(fk.kept[i].host);
		free(fk.kept[i].eve_type);
	}
	fk.n_kept = 0;
	fk.total = 0;
	fk.delay_ms = 0;
}

/* The kept events whose original equals s. */
static size_t count_orig(const char *s, const struct kept **first)
{
	size_t n = 0;

	for (size_t i = 0; i < fk.n_kept; i++) {
		if (fk.kept[i].orig && strcmp(fk.kept[i].orig, s) == 0) {
			if (n == 0 && first)
				*first = &fk.kept[i];
			n++;
		}
	}
	return n;
}

/* ---- harness ----------------------------------------------------------- */

struct harness {
	struct pipeline *p;
	struct ingest *g;
	struct ingest_config cfg;
	char dir[64];
};

static void cfg_init(struct ingest_config *c)
{
	static char empty[] = "";

	memset(c, 0, sizeof(*c));
	c->syslog_udp = c->syslog_tcp = c->syslog_tls = c->json_tcp = empty;
	c->tls_cert = c->tls_key = c->tls_ca = c->files_state = empty;
	c->max_line = 1024;
	c->udp_rcvbuf = 4 * 1024 * 1024;
	c->max_connections = 100;
	c->idle_timeout = 0;
}

static int h_start_pipeline(struct harness *h, size_t queue)
{
	struct pipeline_config pc = {
		.workers = 2,
		.in_queue_batches = queue,
		.out_queue_batches = queue,
		.keep_original = 1,
		.max_batch_events = 1024,
	};

	h->p = pipeline_new(&pc, &fk.base);
	if (!h->p)
		return M_ENOMEM;
	return pipeline_start(h->p);
}

static void h_start(struct harness *h, size_t queue)
{
	assert_int_equal(h_start_pipeline(h, queue), 0);
	assert_int_equal(ingest_start(&h->cfg, h->p, &h->g), 0);
}

static void h_finish(struct harness *h)
{
	ingest_stop(h->g);
	h->g = NULL;
	pipeline_drain(h->p);
	pipeline_free(h->p);
	h->p = NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the store holds at least n events; 0 or -1 on timeout. */
static int wait_total(size_t n, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	while (fake_total() < n) {
		if (mono_ms() > end)
			return -1;
		usleep(5000);
	}
	return 0;
}

static uint64_t metric_now(const char *name, const char *input)
{
	char labels[128];

	snprintf(labels, sizeof(labels), "input=\"%s\"", input);
	return metric_value(metric_get(name, "", METRIC_COUNTER, labels));
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* 1 when the peer closed the connection within timeout_ms. */
static int peer_closed(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	return recv(fd, &c, 1, 0) <= 0;
}

static void udp_send(int port, const char *p, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&sa,
				sizeof(sa)), (ssize_t)n);
	close(fd);
}

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	fake_reset();
	cfg_init(&h->cfg);
	snprintf(h->dir, sizeof(h->dir), "/tmp/mamori-listen-XXXXXX");
	if (!mkdtemp(h->dir))
		return -1;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct harness *h = *state;
	char cmd[128];

	if (h->g)
		ingest_stop(h->g);
	if (h->p) {
		pipeline_drain(h->p);
		pipeline_free(h->p);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", h->dir);
	free(h);
	fake_reset();
	return 0;
}

/* ---- UDP --------------------------------------------------------------- */

static void test_udp(void **state)
{
	struct harness *h = *state;
	char msg[128], big[2000];
	const struct kept *k = NULL;
	uint64_t trunc0 = metric_now("mamori_input_truncated_total",
				     "syslog_udp");
	int port;

	h->cfg.syslog_udp = "127.0.0.1:0";
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_udp");
	assert_true(port > 0);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(msg, sizeof(msg),
				 "<13>Nov 25 18:00:00 host%d app: udp %d\n", i, i);
		udp_send(port, msg, (size_t)n);
	}
	udp_send(port, "<13>nul trimmed\0", 16);
	memset(big, 'x', sizeof(big));
	memcpy(big, "<13>big ", 8);
	udp_send(port, big, sizeof(big));
	udp_send(port, "\n", 1);   /* empty after trimming: not a record */
	assert_int_equal(wait_total(102, 5000), 0);
	h_finish(h);

	assert_int_equal(fk.total, 102);
	assert_int_equal(count_orig("<13>Nov 25 18:00:00 host7 app: udp 7",
				    &k), 1);
	assert_non_null(k->peer);
	assert_true(strncmp(k->peer, "127.0.0.1:", 10) == 0);
	assert_non_null(k->host);
	assert_string_equal(k->host, "host7");
	assert_int_equal(count_orig("<13>nul trimmed", NULL), 1);
	for (size_t i = 0; i < fk.n_kept; i++) {
		if (strncmp(fk.kept[i].orig, "<13>big ", 8) != 0)
			continue;
		assert_int_equal(strlen(fk.kept[i].orig), 1024);
		assert_true(fk.kept[i].flags & EV_F_TRUNCATED);
		k = NULL;
	}
	assert_null(k);
	assert_int_equal(metric_now("mamori_input_truncated_total",
				    "syslog_udp") - trunc0, 1);
}

/* A full pipeline makes UDP drop (and count) batches instead of blocking
 * the receive loop. */
static void test_udp_drops(void **state)
{
	struct harness *h = *state;
	enum { N = 3000 };
	char msg[128];
	uint64_t drops0 = metric_now("mamori_input_drops_total", "syslog_udp");
	uint64_t drops;
	int port;

	fk.delay_ms = 400;   /* the queue stays full past UDP_SUBMIT_WAIT_MS */
	h->cfg.syslog_udp = "127.0.0.1:0";
	h_start(h, 1);
	port = ingest_port(h->g, "syslog_udp");
	for (int i = 0; i < N; i++) {
		int n = snprintf(msg, sizeof(msg), "<13>flood %d", i);

		udp_send(port, msg, (size_t)n);
	}
	usleep(300000);
	h_finish(h);
	drops = metric_now("mamori_input_drops_total", "syslog_udp") - drops0;
	assert_true(drops > 0);
	assert_true(fk.total > 0);
	assert_true(fk.total + drops <= N);
}

/* ---- TCP, LF framing --------------------------------------------------- */

static void test_tcp_lf(void **state)
{
	struct harness *h = *state;
	char *buf = malloc(500 * 64);
	size_t len = 0;
	int port, a, b;
	int64_t t0;

	assert_non_null(buf);
	h->cfg.syslog_tcp = "127.0.0.1:0";
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tcp");
	assert_true(port > 0);

	/* A quiet sender's single line is stored quickly: batches are
	 * flushed when the loop is idle, not only when full. */
	a = tcp_connect(port);
	t0 = mono_ms();
	send_str(a, "<13>Nov 25 18:00:00 web app: first\n");
	assert_int_equal(wait_total(1, 2000), 0);
	assert_true(mono_ms() - t0 < 1000);

	for (int i = 0; i < 500; i++)
		len += (size_t)snprintf(buf + len, 64, "<14>line %d%s", i,
					i % 2 ? "\r\n" : "\n");
	send_all(a, buf, len);

	/* A line split across two writes, and a last line with no LF. */
	b = tcp_connect(port);
	send_str(b, "<13>split ");
	usleep(100000);
	send_str(b, "line\n<13>no newline at the end");
	close(b);
	assert_int_equal(wait_total(503, 5000), 0);
	close(a);
	h_finish(h);

	assert_int_equal(fk.total, 503);
	assert_int_equal(count_orig("<14>line 0", NULL), 1);
	assert_int_equal(count_orig("<14>line 499", NULL), 1);
	assert_int_equal(count_orig("<13>split line", NULL), 1);
	assert_int_equal(count_orig("<13>no newline at the end", NULL), 1);
	free(buf);
}

/* ---- TCP, octet counting, and a cut record ----------------------------- */

static void test_tcp_octet(void **state)
{
	struct harness *h = *state;
	const char *m1 = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com "
			 "evntslog - ID47 - An application event";
	const char *m2 = "<13>multi\nline";
	char frame[4096], body[2000];
	const struct kept *k = NULL;
	uint64_t trunc0 = metric_now("mamori_input_truncated_total",
				     "syslog_tcp");
	int port, fd, n;

	h->cfg.syslog_tcp = "127.0.0.1:0";
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tcp");
	fd = tcp_connect(port);
	n = snprintf(frame, sizeof(frame), "%zu %s%zu %s", strlen(m1), m1,
		     strlen(m2), m2);
	send_all(fd, frame, (size_t)n);
	/* A frame longer than max_line (1024): cut, the rest skipped. */
	memset(body, 'y', sizeof(body));
	memcpy(body, "<13>long ", 9);
	n = snprintf(frame, sizeof(frame), "%zu ", sizeof(body));
	memcpy(frame + n, body, sizeof(body));
	send_all(fd, frame, (size_t)n + sizeof(body));
	send_str(fd, "9 <13>after");
	close(fd);
	assert_int_equal(wait_total(4, 5000), 0);
	h_finish(h);

	assert_int_equal(fk.total, 4);
	assert_int_equal(count_orig(m1, &k), 1);
	assert_non_null(k->host);
	assert_string_equal(k->host, "mymachine.example.com");
	assert_int_equal(count_orig(m2, NULL), 1);
	assert_int_equal(count_orig("<13>after", NULL), 1);
	for (size_t i = 0; i < fk.n_kept; i++)
		if (strncmp(fk.kept[i].orig, "<13>long ", 9) == 0) {
			assert_int_equal(strlen(fk.kept[i].orig), 1024);
			assert_true(fk.kept[i].flags & EV_F_TRUNCATED);
		}
	assert_int_equal(metric_now("mamori_input_truncated_total",
				    "syslog_tcp") - trunc0, 1);
}

/* ---- JSON lines over TCP ----------------------------------------------- */

static void test_json_tcp(void **state)
{
	struct harness *h = *state;
	const struct kept *k = NULL;
	int fd;

	h->cfg.json_tcp = "127.0.0.1:0";
	h_start(h, 64);
	fd = tcp_connect(ingest_port(h->g, "json_tcp"));
	send_str(fd, "{\"timestamp\":\"2024-05-01T10:00:00.000000+0000\","
		 "\"event_type\":\"alert\",\"src_ip\":\"10.0.0.1\","
		 "\"dest_ip\":\"10.0.0.2\"}\n{\"user\":\"bob\"}\n");
	close(fd);
	assert_int_equal(wait_total(2, 5000), 0);
	h_finish(h);

	assert_int_equal(fk.total, 2);
	assert_int_equal(count_orig("{\"user\":\"bob\"}", NULL), 1);
	for (size_t i = 0; i < fk.n_kept; i++)
		if (strstr(fk.kept[i].orig, "alert"))
			k = &fk.kept[i];
	assert_non_null(k);
	assert_non_null(k->eve_type);
	assert_string_equal(k->eve_type, "alert");
}

/* ---- backpressure: a slow store loses nothing -------------------------- */

static void test_tcp_backpressure(void **state)
{
	struct harness *h = *state;
	enum { N = 20000 };
	char line[128];
	uint64_t drops0 = metric_now("mamori_input_drops_total", "syslog_tcp");
	int fd;

	fk.delay_ms = 5;
	h->cfg.syslog_tcp = "127.0.0.1:0";
	h_start(h, 1);
	fd = tcp_connect(ingest_port(h->g, "syslog_tcp"));
	for (int i = 0; i < N; i++) {
		int n = snprintf(line, sizeof(line),
				 "<13>Nov 25 18:00:00 h app: backpressure "
				 "record number %06d padding padding\n", i);
		send_all(fd, line, (size_t)n);
	}
	close(fd);
	assert_int_equal(wait_total(N, 60000), 0);
	h_finish(h);
	assert_int_equal(fk.total, N);
	assert_int_equal(count_orig("<13>Nov 25 18:00:00 h app: backpressure "
				    "record number 000000 padding padding",
				    NULL), 1);
	assert_int_equal(metric_now("mamori_input_drops_total", "syslog_tcp"),
			 drops0);
}

/* ---- limits ------------------------------------------------------------ */

static void test_max_connections(void **state)
{
	struct harness *h = *state;
	int port, a, b, c;

	h->cfg.syslog_tcp = "127.0.0.1:0";
	h->cfg.max_connections = 2;
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tcp");
	a = tcp_connect(port);
	b = tcp_connect(port);
	send_str(a, "<13>from a\n");
	send_str(b, "<13>from b\n");
	assert_int_equal(wait_total(2, 5000), 0);
	c = tcp_connect(port);
	assert_true(peer_closed(c, 3000));
	close(c);
	send_str(a, "<13>a again\n");
	assert_int_equal(wait_total(3, 5000), 0);
	close(a);
	close(b);
	h_finish(h);
	assert_int_equal(fk.total, 3);
}

static void test_idle_timeout(void **state)
{
	struct harness *h = *state;
	int fd;

	h->cfg.syslog_tcp = "127.0.0.1:0";
	h->cfg.idle_timeout = 1;
	h_start(h, 64);
	fd = tcp_connect(ingest_port(h->g, "syslog_tcp"));
	send_str(fd, "<13>silent after this");
	assert_true(peer_closed(fd, 4000));
	close(fd);
	/* The unterminated record is kept when the peer is closed. */
	assert_int_equal(wait_total(1, 5000), 0);
	h_finish(h);
	assert_int_equal(fk.total, 1);
	assert_int_equal(count_orig("<13>silent after this", NULL), 1);
}

static void test_port_in_use(void **state)
{
	struct harness *h = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char addr[32];
	struct ingest *g = NULL;
	int t = socket(AF_INET, SOCK_STREAM, 0);
	int u = socket(AF_INET, SOCK_DGRAM, 0);

	assert_int_equal(h_start_pipeline(h, 8), 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(t, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(t, 1), 0);
	assert_int_equal(getsockname(t, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	h->cfg.syslog_tcp = addr;
	assert_int_equal(ingest_start(&h->cfg, h->p, &g), M_EIO);
	assert_null(g);

	sa.sin_port = 0;
	assert_int_equal(bind(u, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sl = sizeof(sa);
	assert_int_equal(getsockname(u, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	h->cfg.syslog_tcp = "";
	h->cfg.syslog_udp = addr;
	assert_int_equal(ingest_start(&h->cfg, h->p, &g), M_EIO);
	assert_null(g);
	close(t);
	close(u);
}

/* ---- TLS --------------------------------------------------------------- */

/* A self-signed P-256 certificate for "localhost" in dir/cert.pem and
 * dir/key.pem; it also serves as the client certificate and the CA. */
static void make_cert(const char *dir, char *cert, char *key, size_t sz)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	FILE *f;

	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1,
				   0);
	X509_set_issuer_name(x, nm);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	snprintf(cert, sz, "%s/cert.pem", dir);
	snprintf(key, sz, "%s/key.pem", dir);
	f = fopen(cert, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	f = fopen(key, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL,
					      NULL), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

/* Sends data over TLS; with a client certificate when cert is set.
 * Returns 0 when everything was written and the server did not fail the
 * session. */
static int tls_send(int port, const char *cert, const char *key,
		    const char *data)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	int fd = tcp_connect(port), rc = -1;
	char c;

	assert_non_null(ctx);
	if (cert) {
		assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert,
						SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key,
						SSL_FILETYPE_PEM), 1);
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		goto out;
	if (SSL_write(ssl, data, (int)strlen(data)) != (int)strlen(data))
		goto out;
	/* A rejected client learns it on its first read (TLS 1.3); the
	 * server sends no data, so the read ends in the timeout otherwise. */
	{
		struct timeval tv = { 0, 300000 };
		int r;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		r = SSL_read(ssl, &c, 1);
		if (r <= 0 && SSL_get_error(ssl, r) == SSL_ERROR_SSL)
			goto out;
	}
	SSL_shutdown(ssl);
	rc = 0;
out:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

static void test_tls(void **state)
{
	struct harness *h = *state;
	char cert[128], key[128];
	int port;

	make_cert(h->dir, cert, key, sizeof(cert));
	h->cfg.syslog_tls = "127.0.0.1:0";
	h->cfg.tls_cert = cert;
	h->cfg.tls_key = key;
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tls");
	assert_true(port > 0);
	assert_int_equal(tls_send(port, NULL, NULL,
				  "11 <13>tls one11 <13>tls two"), 0);
	assert_int_equal(tls_send(port, NULL, NULL,
				  "<13>tls lf one\n<13>tls lf two\n"), 0);
	assert_int_equal(wait_total(4, 5000), 0);
	h_finish(h);
	assert_int_equal(fk.total, 4);
	assert_int_equal(count_orig("<13>tls one", NULL), 1);
	assert_int_equal(count_orig("<13>tls two", NULL), 1);
	assert_int_equal(count_orig("<13>tls lf two", NULL), 1);
}

static void test_tls_client_cert(void **state)
{
	struct harness *h = *state;
	char cert[128], key[128];
	int port;

	make_cert(h->dir, cert, key, sizeof(cert));
	h->cfg.syslog_tls = "127.0.0.1:0";
	h->cfg.tls_cert = cert;
	h->cfg.tls_key = key;
	h->cfg.tls_ca = cert;
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tls");
	/* Without a certificate: refused, nothing stored. */
	(void)tls_send(port, NULL, NULL, "<13>anonymous\n");
	assert_int_equal(tls_send(port, cert, key, "<13>verified\n"), 0);
	assert_int_equal(wait_total(1, 5000), 0);
	usleep(200000);
	h_finish(h);
	assert_int_equal(fk.total, 1);
	assert_int_equal(count_orig("<13>verified", NULL), 1);
}

static void test_tls_bad_cert(void **state)
{
	struct harness *h = *state;
	char path[128];
	struct ingest *g = NULL;
	FILE *f;

	assert_int_equal(h_start_pipeline(h, 8), 0);
	h->cfg.syslog_tls = "127.0.0.1:0";
	h->cfg.tls_cert = "/nonexistent/cert.pem";
	h->cfg.tls_key = "/nonexistent/key.pem";
	assert_int_equal(ingest_start(&h->cfg, h->p, &g), M_EINVAL);
	assert_null(g);
	snprintf(path, sizeof(path), "%s/garbage.pem", h->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64\n", f);
	fclose(f);
	h->cfg.tls_cert = path;
	h->cfg.tls_key = path;
	assert_int_equal(ingest_start(&h->cfg, h->p, &g), M_EINVAL);
	h->cfg.tls_cert = "";
	assert_int_equal(ingest_start(&h->cfg, h->p, &g), M_EINVAL);
}

/* ---- followed file ----------------------------------------------------- */

static void append(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static void test_follow_file(void **state)
{
	struct harness *h = *state;
	char path[128], old[140], *files[1];
	char want[32];

	snprintf(path, sizeof(path), "%s/eve.json", h->dir);
	snprintf(old, sizeof(old), "%s.1", path);
	append(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n", O_APPEND);
	files[0] = path;
	h->cfg.json_files.v = files;
	h->cfg.json_files.n = 1;
	h_start(h, 64);
	assert_int_equal(wait_total(3, 5000), 0);

	/* Appended, with a line completed by a later write. */
	append(path, "{\"n\":4}\n{\"n\":", O_APPEND);
	usleep(300000);
	append(path, "5}\n", O_APPEND);
	assert_int_equal(wait_total(5, 5000), 0);

	/* Rotated: the old file gets one more line before the new one
	 * appears; both are read. */
	assert_int_equal(rename(path, old), 0);
	append(old, "{\"n\":6}\n", O_APPEND);
	usleep(300000);
	append(path, "{\"n\":7}\n{\"n\":8}\n", O_APPEND);
	assert_int_equal(wait_total(8, 5000), 0);

	/* Truncated in place (copytruncate): read again from the start. */
	append(path, "{\"n\":9}\n", O_TRUNC);
	assert_int_equal(wait_total(9, 5000), 0);
	usleep(300000);
	h_finish(h);

	assert_int_equal(fk.total, 9);
	for (int i = 1; i <= 9; i++) {
		snprintf(want, sizeof(want), "{\"n\":%d}", i);
		assert_int_equal(count_orig(want, NULL), 1);
	}
}

/* With files_state, a restart resumes after the last record handed over
 * (an unfinished last line is read again then), and nothing is read twice. */
static void test_follow_resume(void **state)
{
	struct harness *h = *state;
	char path[128], st[128], *files[1];
	char want[32];

	snprintf(path, sizeof(path), "%s/resume.json", h->dir);
	snprintf(st, sizeof(st), "%s/files.state", h->dir);
	append(path, "{\"r\":1}\n{\"r\":2}\n{\"r\":", O_APPEND);
	files[0] = path;
	h->cfg.json_files.v = files;
	h->cfg.json_files.n = 1;
	h->cfg.files_state = st;
	h_start(h, 64);
	assert_int_equal(wait_total(2, 5000), 0);
	usleep(300000);
	h_finish(h);
	assert_int_equal(fk.total, 2);

	append(path, "3}\n{\"r\":4}\n", O_APPEND);
	h_start(h, 64);
	assert_int_equal(wait_total(4, 5000), 0);
	usleep(300000);
	h_finish(h);
	assert_int_equal(fk.total, 4);
	for (int i = 1; i <= 4; i++) {
		snprintf(want, sizeof(want), "{\"r\":%d}", i);
		assert_int_equal(count_orig(want, NULL), 1);
	}
}

/* A file that does not exist yet is waited for. */
static void test_follow_missing_file(void **state)
{
	struct harness *h = *state;
	char path[128], *files[1];

	snprintf(path, sizeof(path), "%s/later.json", h->dir);
	files[0] = path;
	h->cfg.json_files.v = files;
	h->cfg.json_files.n = 1;
	h_start(h, 64);
	usleep(300000);
	append(path, "{\"late\":true}\n", O_APPEND);
	assert_int_equal(wait_total(1, 5000), 0);
	h_finish(h);
	assert_int_equal(count_orig("{\"late\":true}", NULL), 1);
}

/* Stopping flushes partial batches and closes everything, with traffic in
 * flight on every listener. */
static void test_stop_with_traffic(void **state)
{
	struct harness *h = *state;
	int fd, port;

	h->cfg.syslog_udp = "127.0.0.1:0";
	h->cfg.syslog_tcp = "127.0.0.1:0";
	h->cfg.json_tcp = "127.0.0.1:0";
	h_start(h, 64);
	port = ingest_port(h->g, "syslog_tcp");
	assert_int_equal(ingest_port(h->g, "nope"), M_ENOTFOUND);
	fd = tcp_connect(port);
	send_str(fd, "<13>one\n<13>partial");
	udp_send(ingest_port(h->g, "syslog_udp"), "<13>udp", 7);
	assert_int_equal(wait_total(2, 5000), 0);
	h_finish(h);
	close(fd);
	/* The partial record of the open connection is kept at stop. */
	assert_int_equal(fk.total, 3);
	assert_int_equal(count_orig("<13>partial", NULL), 1);
}

/* What a sender was acknowledged is stored even when stop comes at once:
 * the listeners read their sockets dry before they close them. (UDP may
 * drop while TCP fills the queue, but never without counting it.) */
static void test_stop_drains(void **state)
{
	struct harness *h = *state;
	enum { N = 50000, U = 200 };
	char line[128];
	uint64_t drops0 = metric_now("mamori_input_drops_total", "syslog_udp");
	uint64_t drops;
	int fd, n;

	h->cfg.syslog_udp = "127.0.0.1:0";
	h->cfg.syslog_tcp = "127.0.0.1:0";
	h_start(h, 4);
	for (int i = 0; i < U; i++) {
		n = snprintf(line, sizeof(line), "<13>udp drain %d", i);
		udp_send(ingest_port(h->g, "syslog_udp"), line, (size_t)n);
	}
	fd = tcp_connect(ingest_port(h->g, "syslog_tcp"));
	for (int i = 0; i < N; i++) {
		n = snprintf(line, sizeof(line), "<13>Nov 25 18:00:00 h app: "
			     "drain %d\n", i);
		send_all(fd, line, (size_t)n);
	}
	shutdown(fd, SHUT_WR);
	h_finish(h);
	close(fd);
	drops = metric_now("mamori_input_drops_total", "syslog_udp") - drops0;
	assert_int_equal(fk.total + drops, N + U);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_lf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_octet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_backpressure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_max_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_port_in_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_cert, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_bad_cert, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follow_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follow_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follow_missing_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_traffic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains, setup,
						teardown),
	};
	int rc;

	fk.base.ops = &fake_ops;
	pthread_mutex_init(&fk.mu, NULL);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_fini();
	return rc;
}
