/*
 * conf_arc: the ARC engine against public vectors.
 *
 * Suites: "ARC validation" and "ARC signing" replay the ValiMail suite
 * (arc-valimail/, YAML read with libyaml); a validation case with an empty
 * cv is counted as skipped, as the suite leaves it open. Signing compares
 * our AAR, AMS and AS with the expected ones after removing all whitespace
 * (the suite's standardized form). The cv a sealer puts in its seal comes
 * from our own validation of the message. "mail-auth ARC" replays
 * stalwartlabs/mail-auth arc/NNN.txt ("<fqdn> <TXT>" lines, an empty line,
 * the message), every chain expected to pass.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "conf_util.h"
#include "mail/arc.h"
#include "mail/dkim.h"
#include "mail/mdns.h"
#include "mail/msg.h"

#define NOW 1667843664
/* Pass counts reached; the harness fails below them. Validation stops at
 * 165 of 168 on purpose: three cases want a chain to pass that RFC 8617
 * (AMS = DKIM-Signature syntax and semantics, RFC 6376 3.5) makes fail, and
 * the engine follows the RFC:
 *   ams_fields_c_na       AMS without c= signed relaxed: the default is
 *                         simple/simple, so the signature does not verify;
 *   ams_fields_h_empty    "h=" empty: the grammar needs one field name;
 *   ams_fields_h_mis_hdr  "h=from:to::date...": an empty field name.
 * (dkimpy, the suite's reference, defaults an AMS to relaxed/relaxed and
 * splits h= leniently.) */
#define FLOOR_VALIDATION 165
#define FLOOR_SIGNING 17
#define FLOOR_MAILAUTH 2

/* ---- a little help over libyaml's document API ---- */

static yaml_node_t *ymap(yaml_document_t *d, yaml_node_t *n, const char *key)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *ystr(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static struct mdns *zone_from(yaml_document_t *d, yaml_node_t *root)
{
	struct mdns *z = mdns_zone_new();
	yaml_node_t *recs = ymap(d, root, "txt-records");
	if (!recs)
		recs = ymap(d, root, "txt_records");
	if (!z || !recs || recs->type != YAML_MAPPING_NODE)
		return z;
	for (yaml_node_pair_t *p = recs->data.mapping.pairs.start; p < recs->data.mapping.pairs.top;
	     p++) {
		const char *k = ystr(yaml_document_get_node(d, p->key));
		const char *v = ystr(yaml_document_get_node(d, p->value));
		if (k && v)
			mdns_zone_add_txt(z, k, v, strlen(v));
	}
	return z;
}

static struct msg *parse_msg(const char *text)
{
	int err = 0;
	return msg_parse(text, strlen(text), &err, NULL);
}

/* Call fn for each document of a YAML file. */
static void each_doc(const char *rel, struct conf_tally *t,
		     void (*fn)(yaml_document_t *, yaml_node_t *, struct conf_tally *))
{
	size_t len = 0;
	char *text = conf_read(conf_path(rel), &len);
	yaml_parser_t p;

	if (!text) {
		conf_result(t, rel, 0, "unreadable");
		return;
	}
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	for (int guard = 0; guard < 1000; guard++) {
		yaml_document_t d;
		if (!yaml_parser_load(&p, &d)) {
			conf_result(t, rel, 0, "YAML error");
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&d);
		if (!root) {
			yaml_document_delete(&d);
			break;
		}
		fn(&d, root, t);
		yaml_document_delete(&d);
	}
	yaml_parser_delete(&p);
	free(text);
}

/* ---- validation ---- */

/* 1 when a later test of the mapping has the same name: the file repeats
 * four test names and, as with any YAML loader into a dictionary, the last
 * one counts. */
static int later_dup(yaml_document_t *d, yaml_node_t *map, yaml_node_pair_t *p)
{
	const char *id = ystr(yaml_document_get_node(d, p->key));
	for (yaml_node_pair_t *q = p + 1; q < map->data.mapping.pairs.top; q++) {
		const char *o = ystr(yaml_document_get_node(d, q->key));
		if (o && strcmp(o, id) == 0)
			return 1;
	}
	return 0;
}

static void validation_doc(yaml_document_t *d, yaml_node_t *root, struct conf_tally *t)
{
	struct mdns *z = zone_from(d, root);
	yaml_node_t *tests = ymap(d, root, "tests");
	if (!tests || tests->type != YAML_MAPPING_NODE) {
		mdns_free(z);
		return;
	}
	for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top;
	     p++) {
		const char *id = ystr(yaml_document_get_node(d, p->key));
		yaml_node_t *tc = yaml_document_get_node(d, p->value);
		const char *msg = ystr(ymap(d, tc, "message"));
		const char *cv = ystr(ymap(d, tc, "cv"));
		char why[768];
		if (!id || later_dup(d, tests, p))
			continue;
		if (!cv || !*cv) {
			t->skipped++;
			continue;
		}
		struct msg *m = msg ? parse_msg(msg) : NULL;
		struct arc_verify_out out;
		enum arc_cv got = ARC_FAIL;
		if (!m) {
			/* a text msg_parse refuses has no chain we could read */
			got = ARC_NONE;
		} else if (arc_verify(z, m, NOW, &out) == 0) {
			got = out.cv;
		}
		snprintf(why, sizeof(why), "want %s got %s (%s)", cv, arc_cv_str(got),
			 m ? out.reason : "unparseable");
		conf_result(t, id, strcasecmp(cv, arc_cv_str(got)) == 0, why);
		if (getenv("CONF_VERBOSE"))
			printf("case %s: %s\n", id, why);
		msg_free(m);
	}
	mdns_free(z);
}

/* ---- signing ---- */

/* The results of every Authentication-Results of srv_id, in order, joined
 * with "; " (the suite's AR consolidation). */
static char *consolidate(const struct msg *m, const char *srv_id)
{
	size_t cap = 8192, n = 0;
	char *out = calloc(1, cap);
	for (size_t i = 0; out && i < m->nhdr; i++) {
		if (!msg_hdr_is(m, i, "Authentication-Results"))
			continue;
		char *v = msg_hdr_unfolded(m, i);
		if (!v)
			continue;
		char *semi = strchr(v, ';');
		size_t idl = semi ? (size_t)(semi - v) : strlen(v);
		while (idl && isspace((unsigned char)v[idl - 1]))
			idl--;
		if (semi && idl == strlen(srv_id) && strncasecmp(v, srv_id, idl) == 0) {
			char *s = semi + 1;
			while (*s) {
				char *e = strchr(s, ';');
				size_t l = e ? (size_t)(e - s) : strlen(s);
				char *b = s;
				while (l && isspace((unsigned char)*b)) {
					b++;
					l--;
				}
				while (l && isspace((unsigned char)b[l - 1]))
					l--;
				if (l && n + l + 3 < cap)
					n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "; " : "",
							      (int)l, b);
				s = e ? e + 1 : s + strlen(s);
			}
		}
		free(v);
	}
	return out;
}

static int same_nows(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	for (;;) {
		while (*a && isspace((unsigned char)*a))
			a++;
		while (*b && isspace((unsigned char)*b))
			b++;
		if (*a != *b)
			return 0;
		if (!*a)
			return 1;
		a++;
		b++;
	}
}

static void signing_doc(yaml_document_t *d, yaml_node_t *root, struct conf_tally *t)
{
	struct mdns *z = zone_from(d, root);
	yaml_node_t *tests = ymap(d, root, "tests");
	const char *dom = ystr(ymap(d, root, "domain"));
	const char *sel = ystr(ymap(d, root, "sel"));
	const char *key = ystr(ymap(d, root, "privatekey"));
	if (!tests || tests->type != YAML_MAPPING_NODE || !dom || !sel || !key) {
		mdns_free(z);
		return;
	}
	for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top;
	     p++) {
		const char *id = ystr(yaml_document_get_node(d, p->key));
		yaml_node_t *tc = yaml_document_get_node(d, p->value);
		const char *msg = ystr(ymap(d, tc, "message"));
		const char *ts = ystr(ymap(d, tc, "t"));
		const char *hdrs = ystr(ymap(d, tc, "sig-headers"));
		const char *srv = ystr(ymap(d, tc, "srv-id"));
		const char *e_as = ystr(ymap(d, tc, "AS"));
		const char *e_ams = ystr(ymap(d, tc, "AMS"));
		const char *e_aar = ystr(ymap(d, tc, "AAR"));
		char err[128] = "", why[512] = "";
		if (!id)
			continue;
		struct dkim_signer *s = hdrs ? dkim_signer_new(dom, sel, key, strlen(key), hdrs, err,
							       sizeof(err))
					     : NULL;
		struct msg *m = msg ? parse_msg(msg) : NULL;
		char *aar = NULL, *ams = NULL, *as = NULL, *ar = NULL;
		int ok = 0;
		if (!s || !m || !ts || !srv) {
			snprintf(why, sizeof(why), "setup: %s", err);
		} else {
			struct arc_verify_out vo;
			enum arc_cv cv = arc_verify(z, m, NOW, &vo) == 0 ? vo.cv : ARC_FAIL;
			ar = consolidate(m, srv);
			int refuse = same_nows(e_as, "") && same_nows(e_ams, "") && same_nows(e_aar, "");
			if (arc_seal(s, m, srv, ar, cv, (time_t)strtoll(ts, NULL, 10), &aar, &ams, &as)) {
				ok = refuse;
				snprintf(why, sizeof(why), "seal failed (cv in %s)", arc_cv_str(cv));
			} else if (refuse) {
				snprintf(why, sizeof(why), "sealed where the suite wants no new set");
			} else if (!same_nows(aar, e_aar)) {
				snprintf(why, sizeof(why), "AAR: got %s", aar);
			} else if (!same_nows(ams, e_ams)) {
				snprintf(why, sizeof(why), "AMS: got %s", ams);
			} else if (!same_nows(as, e_as)) {
				snprintf(why, sizeof(why), "AS: got %s", as);
			} else {
				ok = 1;
			}
		}
		conf_result(t, id, ok, why);
		free(aar);
		free(ams);
		free(as);
		free(ar);
		msg_free(m);
		dkim_signer_free(s);
	}
	mdns_free(z);
}

/* ---- mail-auth ---- */

static void suite_mailauth(struct conf_tally *t)
{
	for (int k = 1; k <= 2; k++) {
		char rel[128], id[16], why[256] = "";
		size_t len = 0;
		snprintf(rel, sizeof(rel), "mail-suites/mail-auth-resources/resources/arc/%03d.txt", k);
		snprintf(id, sizeof(id), "%03d", k);
		char *txt = conf_read(conf_path(rel), &len);
		if (!txt) {
			conf_result(t, id, 0, "unreadable");
			continue;
		}
		struct mdns *z = mdns_zone_new();
		struct msg *m = conf_mailauth_msg(txt, len, z);
		struct arc_verify_out out;
		int ok = m && arc_verify(z, m, NOW, &out) == 0 && out.cv == ARC_PASS;
		snprintf(why, sizeof(why), "%s", m ? out.reason : "unparseable");
		conf_result(t, id, ok, why);
		msg_free(m);
		mdns_free(z);
		free(txt);
	}
}

int main(void)
{
	struct conf_tally v = { .suite = "ARC validation" }, s = { .suite = "ARC signing" },
			  a = { .suite = "mail-auth ARC" };
	each_doc("mail-suites/arc-valimail/arc-draft-validation-tests.yml", &v, validation_doc);
	each_doc("mail-suites/arc-valimail/arc-draft-sign-tests.yml", &s, signing_doc);
	suite_mailauth(&a);
	conf_report(&v);
	conf_report(&s);
	conf_report(&a);
	return v.passed < FLOOR_VALIDATION || s.passed < FLOOR_SIGNING || a.passed < FLOOR_MAILAUTH;
}
