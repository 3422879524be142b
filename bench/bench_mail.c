/*
 * bench_mail: the mail gateway's cost per message, one thread.
 *
 * A generated corpus: D sender domains, each with an SPF record, a DMARC
 * p=reject record and a DKIM key (half RSA-2048, half Ed25519), served from
 * the in-memory zone (a warm DNS cache: every answer is already local);
 * messages of a few KB signed by their domain, of which one in five fails
 * (sent from an address outside the SPF record and with a body changed
 * after signing, so DMARC fails too).
 *
 *   1. SPF + DKIM + DMARC (mail_auth_run) per message: messages per
 *      CPU-second, latency p50/p99;
 *   2. the whole decision as the milter asks it (mail_gw_check: MIME,
 *      attachments, URLs, BEC, authentication, headers, event) per message:
 *      messages per CPU-second and the latency it adds, p50/p99;
 *   3. peak memory.
 *
 * Usage: bench_mail [--write DIR | --write-only DIR] [messages] [domains].
 * It prints figures; it never passes or fails, but it says when the results
 * are not what the corpus holds (a broken engine is not a fast one).
 *
 * --write DIR also writes the corpus out, so that another filter can be
 * measured on the very same messages (bench/mail_compare.sh runs rspamd on
 * it): DIR/msgs/NNNNN.eml (CRLF), DIR/meta.tsv (file, client IP, HELO,
 * envelope sender, recipient, expected pass or fail) and DIR/zone.txt (name,
 * type, value of each DNS record, tab-separated). --write-only DIR writes
 * and measures nothing.
 */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "mail/dkim.h"
#include "mail/mail_auth.h"
#include "mail/mail_conf.h"
#include "mail/mail_gw.h"
#include "mail/mdns.h"
#include "mail/milter.h"
#include "mail/msg.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static char *b64(const unsigned char *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);
	if (o)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* A key pair: the PEM private key and the p= of its DKIM record. */
static int make_key(int ed, char **pem, size_t *pem_len, char **p)
{
	EVP_PKEY *k = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
			 : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (!k)
		return -1;
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	*pem = malloc((size_t)n + 1);
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	*pem_len = (size_t)n;
	BIO_free(bio);
	if (ed) {
		unsigned char raw[32];
		size_t rl = sizeof(raw);
		EVP_PKEY_get_raw_public_key(k, raw, &rl);
		*p = b64(raw, rl);
	} else {
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(k, &der);
		*p = b64(der, (size_t)dl);
		OPENSSL_free(der);
	}
	EVP_PKEY_free(k);
	return 0;
}

struct item {
	struct msg *m;
	char mail_from[128];
	char from_domain[64];
	uint8_t ip[4];
	int should_pass;
};

static const char *LOREM =
	"Dear colleague,\r\n\r\nPlease find the quarterly figures below. The numbers for the "
	"northern region are up on last year, the southern region is flat, and the new "
	"office opened on time. Let me know if anything needs a second look before the "
	"board meeting on Thursday.\r\n\r\n";

#define HELO "mail.sender.example"
#define RCPT "someone@test.local"

/* Adds a TXT record to the in-memory zone and, when zone_out is open (the
 * corpus is being written), a "name TAB TXT TAB value" line to it. */
static void add_txt(struct mdns *z, FILE *zone_out, const char *name, const char *rec)
{
	mdns_zone_add_txt(z, name, rec, strlen(rec));
	if (zone_out)
		fprintf(zone_out, "%s\tTXT\t%s\n", name, rec);
}

static struct item *make_corpus(struct mdns *z, FILE *zone_out, size_t nmsg, size_t ndom)
{
	struct item *it = calloc(nmsg, sizeof(*it));
	struct dkim_signer **signers = calloc(ndom, sizeof(*signers));
	char name[256], rec[2048];
	for (size_t d = 0; d < ndom; d++) {
		char *pem, *p;
		size_t pl;
		int ed = (int)(d % 2);
		if (make_key(ed, &pem, &pl, &p) < 0)
			return NULL;
		snprintf(name, sizeof(name), "d%zu.example", d);
		snprintf(rec, sizeof(rec), "v=spf1 ip4:198.51.100.0/24 ip4:192.0.2.%zu -all", d % 250);
		add_txt(z, zone_out, name, rec);
		snprintf(name, sizeof(name), "_dmarc.d%zu.example", d);
		snprintf(rec, sizeof(rec), "v=DMARC1; p=reject; rua=mailto:dmarc@d%zu.example", d);
		add_txt(z, zone_out, name, rec);
		snprintf(name, sizeof(name), "sel._domainkey.d%zu.example", d);
		snprintf(rec, sizeof(rec), "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", p);
		add_txt(z, zone_out, name, rec);
		char err[128];
		snprintf(name, sizeof(name), "d%zu.example", d);
		signers[d] = dkim_signer_new(name, "sel", pem, pl, NULL, err, sizeof(err));
		if (!signers[d]) {
			fprintf(stderr, "signer: %s\n", err);
			return NULL;
		}
		free(pem);
		free(p);
	}
	char *text = malloc(16384);
	for (size_t i = 0; i < nmsg; i++) {
		size_t d = i % ndom;
		int fail = i % 5 == 4;
		size_t n = (size_t)snprintf(
			text, 16384,
			"From: Sender %zu <user%zu@d%zu.example>\r\nTo: someone@test.local\r\n"
			"Subject: Quarterly figures %zu\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
			"Message-ID: <%zu.bench@d%zu.example>\r\nMIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n\r\n",
			i, i, d, i, i, d);
		for (int k = 0; k < 8; k++)
			n += (size_t)snprintf(text + n, 16384 - n, "%s", LOREM);
		int perr;
		struct msg *m = msg_parse(text, n, &perr, NULL);
		char *sig = NULL;
		dkim_sign(signers[d], m, time(NULL), &sig);
		char *v = malloc(strlen(sig) + 2);
		v[0] = ' ';
		memcpy(v + 1, sig, strlen(sig) + 1);
		msg_prepend_header(m, "DKIM-Signature", v);
		free(v);
		free(sig);
		if (fail)
			msg_add_body(m, "P.S. changed in transit\r\n", 25);
		it[i].m = m;
		snprintf(it[i].mail_from, sizeof(it[i].mail_from), "user%zu@d%zu.example", i, d);
		snprintf(it[i].from_domain, sizeof(it[i].from_domain), "d%zu.example", d);
		uint8_t good[4] = {192, 0, 2, (uint8_t)(d % 250)};
		uint8_t bad[4] = {203, 0, 113, 7};
		memcpy(it[i].ip, fail ? bad : good, 4);
		it[i].should_pass = !fail;
	}
	free(text);
	for (size_t d = 0; d < ndom; d++)
		dkim_signer_free(signers[d]);
	free(signers);
	return it;
}

/* Writes DIR/msgs/NNNNN.eml and DIR/meta.tsv for the corpus (zone.txt was
 * written while the corpus was made). Returns 0 or -1 with the error
 * printed. */
static int write_corpus(const char *dir, const struct item *it, size_t nmsg)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/msgs", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/meta.tsv", dir);
	FILE *meta = fopen(path, "w");
	if (!meta) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(meta, "#file\tip\thelo\tmail_from\trcpt\texpect\n");
	int rc = 0;
	for (size_t i = 0; i < nmsg && rc == 0; i++) {
		size_t len;
		char *text = msg_render(it[i].m, &len);
		snprintf(path, sizeof(path), "%s/msgs/%05zu.eml", dir, i);
		FILE *f = fopen(path, "wb");
		if (!text || !f || fwrite(text, 1, len, f) != len)
			rc = -1;
		if (f && fclose(f) != 0)
			rc = -1;
		free(text);
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
		fprintf(meta, "msgs/%05zu.eml\t%u.%u.%u.%u\t%s\t%s\t%s\t%s\n", i, it[i].ip[0],
			it[i].ip[1], it[i].ip[2], it[i].ip[3], HELO, it[i].mail_from, RCPT,
			it[i].should_pass ? "pass" : "fail");
	}
	if (fclose(meta) != 0)
		rc = -1;
	return rc;
}

static void report(const char *what, double *lat, size_t n, double cpu)
{
	qsort(lat, n, sizeof(*lat), cmp_d);
	printf("%-34s %9.0f msg/CPU-s   p50 %7.1f us   p99 %7.1f us   max %7.1f us\n", what,
	       (double)n / cpu, lat[n / 2] * 1e6, lat[(size_t)((double)n * 0.99)] * 1e6,
	       lat[n - 1] * 1e6);
}

int main(int argc, char **argv)
{
	const char *out_dir = NULL;
	int measure = 1;
	if (argc > 2 && (!strcmp(argv[1], "--write") || !strcmp(argv[1], "--write-only"))) {
		measure = !strcmp(argv[1], "--write");
		out_dir = argv[2];
		argc -= 2;
		argv += 2;
	}
	size_t nmsg = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	size_t ndom = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
	log_set_level(LOG_WARN);
	if (nmsg < 100)
		nmsg = 100;
	if (ndom < 2)
		ndom = 2;
	if (nmsg > 99999)
		nmsg = 99999; /* NNNNN.eml */
	FILE *zone_out = NULL;
	if (out_dir) {
		char path[4096];
		if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "mkdir %s: %s\n", out_dir, strerror(errno));
			return 1;
		}
		snprintf(path, sizeof(path), "%s/zone.txt", out_dir);
		zone_out = fopen(path, "w");
		if (!zone_out) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	struct mdns *z = mdns_zone_new();
	double t0 = wall_now();
	struct item *it = make_corpus(z, zone_out, nmsg, ndom);
	if (zone_out && fclose(zone_out) != 0) {
		fprintf(stderr, "%s/zone.txt: %s\n", out_dir, strerror(errno));
		return 1;
	}
	if (!it)
		return 1;
	size_t bytes = 0;
	for (size_t i = 0; i < nmsg; i++)
		bytes += it[i].m->hdr_bytes + it[i].m->body_len;
	printf("corpus: %zu messages (%zu bytes each on average), %zu domains (RSA-2048 and "
	       "Ed25519 keys), 1 in 5 failing; made in %.1f s\n",
	       nmsg, bytes / nmsg, ndom, wall_now() - t0);
	if (out_dir) {
		if (write_corpus(out_dir, it, nmsg) < 0)
			return 1;
		printf("corpus written to %s (msgs/, meta.tsv, zone.txt)\n", out_dir);
	}
	if (!measure)
		goto done;

	/* 1. SPF + DKIM + DMARC. */
	double *lat = calloc(nmsg, sizeof(double));
	size_t pass = 0, agree = 0;
	/* Warm up once over the corpus (key cache), as a running gateway is. */
	for (int round = 0; round < 2; round++) {
		double c0 = cpu_now();
		pass = agree = 0;
		for (size_t i = 0; i < nmsg; i++) {
			struct mail_auth a;
			struct mail_auth_in in = {0};
			in.af = AF_INET;
			in.ip = it[i].ip;
			in.helo = HELO;
			in.mail_from = it[i].mail_from;
			in.receiver = "mx.test.local";
			in.m = it[i].m;
			in.from_domain = it[i].from_domain;
			in.now = time(NULL);
			double s = wall_now();
			mail_auth_run(z, &in, &a);
			lat[i] = wall_now() - s;
			int ok = a.dmarc_done && a.dmarc.result == DMARC_RESULT_PASS;
			pass += (size_t)ok;
			agree += (size_t)(ok == it[i].should_pass);
			mail_auth_fini(&a);
		}
		if (round == 1)
			report("SPF+DKIM+DMARC (warm cache)", lat, nmsg, cpu_now() - c0);
	}
	printf("  dmarc pass %zu / %zu; results as the corpus says: %zu / %zu%s\n", pass, nmsg, agree,
	       nmsg, agree == nmsg ? "" : "   <-- WRONG RESULTS");

	/* 2. The whole decision, as the milter asks it. */
	char dir[] = "/tmp/mamori-bench-mail.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct conf_doc doc = {0};
	struct mail_config cfg;
	struct buf err;
	buf_init(&err, 4096);
	mail_config_load(&doc, &cfg, &err);
	free(cfg.milter);
	cfg.milter = strdup("");
	struct mail_gw_deps deps = {0};
	deps.data_dir = dir;
	deps.dns = z;
	struct mail_gw *g = mail_gw_new(&cfg, &deps, &err);
	if (!g) {
		fprintf(stderr, "mail_gw_new: %s\n", err.p);
		return 1;
	}
	size_t rejected = 0;
	double c0 = cpu_now();
	for (size_t i = 0; i < nmsg; i++) {
		struct milter_session s;
		memset(&s, 0, sizeof(s));
		s.af = AF_INET;
		memcpy(s.ip, it[i].ip, 4);
		snprintf(s.client_ip, sizeof(s.client_ip), "%u.%u.%u.%u", it[i].ip[0], it[i].ip[1],
			 it[i].ip[2], it[i].ip[3]);
		snprintf(s.helo, sizeof(s.helo), HELO);
		snprintf(s.mail_from, sizeof(s.mail_from), "%s", it[i].mail_from);
		char *rcpt = (char *)RCPT;
		s.rcpt = &rcpt;
		s.nrcpt = 1;
		s.m = it[i].m;
		struct milter_reply r;
		memset(&r, 0, sizeof(r));
		double s0 = wall_now();
		mail_gw_check(g, &s, &r);
		lat[i] = wall_now() - s0;
		rejected += r.verdict == MILTER_REJECT;
		milter_reply_fini(&r);
	}
	report("whole decision (mail_gw_check)", lat, nmsg, cpu_now() - c0);
	printf("  rejected %zu / %zu (the failing fifth: %zu)\n", rejected, nmsg, nmsg / 5);
	mail_gw_free(g);
	mail_config_free(&cfg);
	buf_fini(&err);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("peak memory: %.0f MiB\n", (double)ru.ru_maxrss / 1024.0);
	free(lat);
done:
	for (size_t i = 0; i < nmsg; i++)
		msg_free(it[i].m);
	free(it);
	mdns_free(z);
	metrics_fini();
	return 0;
}
