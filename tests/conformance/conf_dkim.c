/*
 * conf_dkim: the DKIM engine against public vectors.
 *
 * Suites: "dkimpy" replays dkimpy-data/ as its MANIFEST.yml describes (the
 * RFC 8463 Appendix A ed25519 + rsa vectors, the Exim ed25519 vector, sign
 * then verify round trips with the RSA key in all four c= combinations and
 * the two Ed25519 keys, and the key-record error cases); "mail-auth DKIM"
 * replays stalwartlabs/mail-auth dkim/NNN.txt at the fixed time the suite
 * needs (1667843664), every signature of each message expected to pass.
 * The manifest is small and ours, so its cases are a table here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "conf_util.h"
#include "mail/dkim.h"
#include "mail/mdns.h"
#include "mail/msg.h"

#define NOW 1667843664
/* Pass counts reached; the harness fails below them. */
#define FLOOR_DKIMPY 20
#define FLOOR_MAILAUTH 6

static char *read_rel(const char *rel, size_t *len)
{
	return conf_read(conf_path(rel), len);
}

static struct msg *load_msg(const char *rel)
{
	size_t len = 0;
	int err = 0;
	char *t = read_rel(rel, &len);
	if (!t)
		return NULL;
	struct msg *m = msg_parse(t, len, &err, NULL);
	free(t);
	return m;
}

/* "file:x" means the content of dkimpy-data/x (trailing newline dropped). */
static int zone_add(struct mdns *z, const char *name, const char *rec)
{
	char path[256];
	if (strncmp(rec, "file:", 5) == 0) {
		size_t len = 0;
		snprintf(path, sizeof(path), "mail-suites/dkimpy-data/%s", rec + 5);
		char *t = read_rel(path, &len);
		if (!t)
			return -1;
		while (len && (t[len - 1] == '\n' || t[len - 1] == '\r'))
			len--;
		int rc = mdns_zone_add_txt(z, name, t, len);
		free(t);
		return rc;
	}
	return mdns_zone_add_txt(z, name, rec, strlen(rec));
}

/* A PEM key from a file: PEM as is, or a base64 Ed25519 seed. */
static char *load_key(const char *rel, size_t *pem_len)
{
	size_t len = 0;
	char *t = read_rel(rel, &len);
	if (!t || strstr(t, "-----BEGIN")) {
		*pem_len = len;
		return t;
	}
	unsigned char seed[64];
	while (len && (t[len - 1] == '\n' || t[len - 1] == '\r'))
		len--;
	int n = EVP_DecodeBlock(seed, (const unsigned char *)t, (int)len);
	free(t);
	if (n < 32)
		return NULL;
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (pk && b && PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p = NULL;
		long l = BIO_get_mem_data(b, &p);
		out = malloc((size_t)l + 1);
		if (out) {
			memcpy(out, p, (size_t)l);
			out[l] = '\0';
			*pem_len = (size_t)l;
		}
	}
	BIO_free(b);
	EVP_PKEY_free(pk);
	return out;
}

static void verify_case(struct conf_tally *t, const char *id, const char *msgf,
			const char *const dns[][2], size_t nexp)
{
	char rel[256], why[768];
	struct mdns *z = mdns_zone_new();
	snprintf(rel, sizeof(rel), "mail-suites/dkimpy-data/%s", msgf);
	struct msg *m = load_msg(rel);
	for (size_t i = 0; dns[i][0]; i++)
		zone_add(z, dns[i][0], dns[i][1]);
	struct dkim_verify_out out;
	int ok = m && dkim_verify(z, m, NOW, &out) == 0 && out.n == nexp;
	snprintf(why, sizeof(why), "n=%zu", m ? out.n : 0);
	for (size_t i = 0; ok && i < out.n; i++)
		if (out.sig[i].result != DKIM_PASS) {
			ok = 0;
			snprintf(why, sizeof(why), "sig %zu: %s (%s)", i,
				 dkim_result_str(out.sig[i].result), out.sig[i].reason);
		}
	conf_result(t, id, ok, why);
	msg_free(m);
	mdns_free(z);
}

/* Sign msgf with keyf, publish rec, verify: the result wanted. */
static void round_trip(struct conf_tally *t, const char *id, const char *msgf, const char *keyf,
		       const char *sel, const char *dom, const char *rec, const char *canon,
		       enum dkim_result want)
{
	char rel[256], why[768] = "", err[128] = "", name[300];
	size_t pl = 0;
	snprintf(rel, sizeof(rel), "mail-suites/dkimpy-data/%s", keyf);
	char *pem = load_key(rel, &pl);
	snprintf(rel, sizeof(rel), "mail-suites/dkimpy-data/%s", msgf);
	struct msg *m = load_msg(rel);
	struct mdns *z = mdns_zone_new();
	struct dkim_signer *s = pem ? dkim_signer_new(dom, sel, pem, pl, "from:to:subject:date:message-id", err, sizeof(err)) : NULL;
	char *v = NULL;
	int ok = 0;

	snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom);
	zone_add(z, name, rec);
	if (s && canon)
		dkim_signer_set_canon(s, canon);
	if (!m || !s || dkim_sign(s, m, NOW, &v) != 0) {
		snprintf(why, sizeof(why), "sign failed %s", err);
	} else {
		char val[4096];
		snprintf(val, sizeof(val), " %s", v);
		msg_prepend_header(m, "DKIM-Signature", val);
		struct dkim_verify_out out;
		if (dkim_verify(z, m, NOW, &out) == 0 && out.n >= 1) { /* ours is on top */
			ok = out.sig[0].result == want;
			snprintf(why, sizeof(why), "got %s (%s)", dkim_result_str(out.sig[0].result),
				 out.sig[0].reason);
		}
	}
	conf_result(t, id, ok, why);
	free(v);
	free(pem);
	dkim_signer_free(s);
	msg_free(m);
	mdns_free(z);
}

static void suite_dkimpy(struct conf_tally *t)
{
	static const char *const rfc8463[][2] = {
		{ "brisbane._domainkey.football.example.com",
		  "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
		{ "test._domainkey.football.example.com", "file:test.txt" },
		{ NULL, NULL },
	};
	static const char *const exim[][2] = {
		{ "sed._domainkey.test.ex", "file:eximtest.dns" },
		{ NULL, NULL },
	};
	verify_case(t, "rfc8463-appendix-a", "rfc6376.signed.msg", rfc8463, 2);
	verify_case(t, "exim-ed25519", "ed25519test2.msg", exim, 1);
	round_trip(t, "sign-rfc8032-7.1", "rfc6376.msg", "rfc8032_7_1.key", "brisbane",
		   "football.example.com", rfc8463[0][1], NULL, DKIM_PASS);
	round_trip(t, "sign-ed25519test", "ed25519test.msg", "ed25519test.key", "test",
		   "example.net", "v=DKIM1; k=ed25519; p=yi50DjK5O9pqbFpNHklsv9lqaS0ArSYu02qp1S0DW1Y=",
		   NULL, DKIM_PASS);
	static const char *const canons[] = { "simple/simple", "simple/relaxed", "relaxed/simple",
					      "relaxed/relaxed" };
	for (size_t i = 0; i < 4; i++) {
		char id[64];
		snprintf(id, sizeof(id), "sign-rsa-%s", canons[i]);
		round_trip(t, id, "test.message", "test.private", "test", "example.com",
			   "file:test.txt", canons[i], DKIM_PASS);
	}
	static const struct {
		const char *rec;
		enum dkim_result want;
	} keys[] = {
		{ "file:test2.txt", DKIM_PASS },
		{ "file:badversion.txt", DKIM_PERMERROR },
		{ "file:badk.txt", DKIM_PERMERROR },
		{ "file:test_bad.txt", DKIM_PERMERROR },
	};
	for (size_t i = 0; i < 4; i++)
		round_trip(t, keys[i].rec + 5, "test.message", "test.private", "test", "example.com",
			   keys[i].rec, NULL, keys[i].want);
	/* the other dkimpy messages signed and verified too */
	static const char *const more[] = { "message.mbox", "test_extra.message",
					    "test2.message", "test_nofrom.message" };
	for (size_t i = 0; i < 4; i++)
		for (size_t c = 0; c < 4; c += 3) {
			char id[96];
			snprintf(id, sizeof(id), "sign-%s-%s", more[i], canons[c]);
			round_trip(t, id, more[i], "test.private", "test", "example.com",
				   "file:test.txt", canons[c], DKIM_PASS);
		}
}

/* mail-auth: "<fqdn> <TXT>" lines, an empty line, the message. */
static void suite_mailauth(struct conf_tally *t)
{
	for (int k = 1; k <= 6; k++) {
		char rel[128], id[16], why[768] = "";
		size_t len = 0;
		snprintf(rel, sizeof(rel), "mail-suites/mail-auth-resources/resources/dkim/%03d.txt", k);
		snprintf(id, sizeof(id), "%03d", k);
		char *txt = read_rel(rel, &len);
		if (!txt) {
			conf_result(t, id, 0, "unreadable");
			continue;
		}
		struct mdns *z = mdns_zone_new();
		struct msg *m = conf_mailauth_msg(txt, len, z);
		struct dkim_verify_out out;
		int ok = m && dkim_verify(z, m, NOW, &out) == 0 && out.n > 0;
		snprintf(why, sizeof(why), "no signature");
		for (size_t i = 0; ok && i < out.n; i++)
			if (out.sig[i].result != DKIM_PASS) {
				ok = 0;
				snprintf(why, sizeof(why), "sig %zu d=%s: %s (%s)", i, out.sig[i].d,
					 dkim_result_str(out.sig[i].result), out.sig[i].reason);
			}
		conf_result(t, id, ok, why);
		msg_free(m);
		mdns_free(z);
		free(txt);
	}
}

int main(void)
{
	struct conf_tally a = { .suite = "dkimpy" }, b = { .suite = "mail-auth DKIM" };
	suite_dkimpy(&a);
	suite_mailauth(&b);
	conf_report(&a);
	conf_report(&b);
	return a.passed < FLOOR_DKIMPY || b.passed < FLOOR_MAILAUTH ? 1 : 0;
}
