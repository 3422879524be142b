/*
 * conf_dmarc: replay the DMARC cases and the Public Suffix List vectors.
 *
 *  - dmarc-project-cases/dmarc-cases.yml: OpenSPF-layout zonedata and
 *    cases. We implement RFC 7489 with RFC 9091 (np=), so a case's
 *    *_rfc9091 field, where present, replaces the plain one; the
 *    *_dmarcbis fields are checked in the DMARCbis tree-walk mode.
 *  - psl-tests/test_psl.txt: checkPublicSuffix(input, registrable) against
 *    the list snapshot beside it (psl_load_file), through the same
 *    dmarc_registrable_domain the engine uses.
 *  - mail-auth-resources/resources/dmarc-feedback/NNN.xml: aggregate
 *    reports through dmarc_feedback_parse, compared field by field with
 *    the expected NNN.json (that parser's enum spellings mapped back to the
 *    XML vocabulary: "Relaxed" = r, "MailFrom" = mfrom, "Unspecified" or
 *    null = absent).
 */
#include <ctype.h>
#include <jansson.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "conf_util.h"
#include "mail/dmarc.h"
#include "mail/dmarc_report.h"
#include "mail/mdns.h"
#include "mail/mdns_yaml.h"
#include "mail/spf.h"

#define FLOOR_DMARC 27
#define FLOOR_PSL 78
#define FLOOR_FEEDBACK 5

#define MAX_DKIM 16

/* The expected value of name: with rfc9091 set, its *_rfc9091 variant
 * where the case has one. */
static const char *const mode_suffix[] = {NULL, "_rfc9091", "_dmarcbis"};

static const char *field(yaml_document_t *doc, yaml_node_t *tc, const char *name, int mode)
{
	char k[64];
	snprintf(k, sizeof(k), "%s%s", name, mode_suffix[mode] ? mode_suffix[mode] : "");
	const char *v = mode ? mdns_yaml_str(mdns_yaml_get(doc, tc, k), NULL) : NULL;
	return v ? v : mdns_yaml_str(mdns_yaml_get(doc, tc, name), NULL);
}

static int has_variant(yaml_document_t *doc, yaml_node_t *tc, const char *suffix)
{
	for (yaml_node_pair_t *kv = tc->data.mapping.pairs.start; kv < tc->data.mapping.pairs.top;
	     kv++) {
		size_t len;
		const char *k = mdns_yaml_str(yaml_document_get_node(doc, kv->key), &len);
		size_t sl = strlen(suffix);
		if (k && len > sl && memcmp(k + len - sl, suffix, sl) == 0)
			return 1;
	}
	return 0;
}

/* One check of a case: mode 1 is our default (RFC 7489 + RFC 9091); 0 is
 * plain RFC 7489 (DMARC_F_NO_NP), checked where the case has *_rfc9091
 * variants so both readings are pinned; 2 is the DMARCbis DNS tree walk
 * (DMARC_F_TREEWALK), checked against the *_dmarcbis fields. */
static void run_check(struct conf_tally *t, struct mdns *z, yaml_document_t *doc,
		      const char *id, yaml_node_t *tc, int mode)
{
	struct dmarc_dkim dk[MAX_DKIM];
	struct dmarc_auth in = {0};
	const char *from = mdns_yaml_str(mdns_yaml_get(doc, tc, "from"), NULL);
	const char *at = from ? strrchr(from, '@') : NULL;
	in.from_domain = at ? at + 1 : from;
	yaml_node_t *spf = mdns_yaml_get(doc, tc, "spf");
	const char *sr = mdns_yaml_str(mdns_yaml_get(doc, spf, "result"), NULL);
	in.spf_result = sr ? spf_result_parse(sr) : SPF_NONE;
	in.spf_domain = mdns_yaml_str(mdns_yaml_get(doc, spf, "domain"), NULL);
	yaml_node_t *dl = mdns_yaml_get(doc, tc, "dkim");
	if (dl && dl->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = dl->data.sequence.items.start;
		     it < dl->data.sequence.items.top && in.ndkim < MAX_DKIM; it++) {
			yaml_node_t *s = yaml_document_get_node(doc, *it);
			const char *r = mdns_yaml_str(mdns_yaml_get(doc, s, "result"), NULL);
			dk[in.ndkim].pass = r && strcmp(r, "pass") == 0;
			dk[in.ndkim].d = mdns_yaml_str(mdns_yaml_get(doc, s, "d"), NULL);
			in.ndkim++;
		}
	}
	in.dkim = dk;
	in.flags = mode == 0 ? DMARC_F_NO_NP : mode == 2 ? DMARC_F_TREEWALK : 0;
	struct dmarc_outcome out;
	dmarc_check(z, &in, 50, &out);
	const char *wr = field(doc, tc, "result", mode),
		   *wp = field(doc, tc, "policy", mode),
		   *wd = field(doc, tc, "disposition", mode);
	const char *gr = dmarc_result_str(out.result), *gp = dmarc_policy_str(out.policy),
		   *gd = dmarc_policy_str(out.disposition);
	int ok = wr && wp && wd && strcmp(wr, gr) == 0 && strcmp(wp, gp) == 0 &&
		 strcmp(wd, gd) == 0;
	if (mode == 2) {
		/* A DMARCbis variant pins only the fields it names (the
		 * policy found by the walk is a different record's). */
		static const char *const names[] = {"result", "policy", "disposition"};
		const char *got[] = {gr, gp, gd};
		int named = 0;
		ok = 1;
		for (int i = 0; i < 3; i++) {
			char k[64];
			snprintf(k, sizeof(k), "%s_dmarcbis", names[i]);
			const char *w = mdns_yaml_str(mdns_yaml_get(doc, tc, k), NULL);
			if (w) {
				named++;
				ok &= strcmp(w, got[i]) == 0;
			}
		}
		ok &= named > 0;
	}
	char why[400];
	snprintf(why, sizeof(why), "got %s/%s/%s (%s), want %s/%s/%s", gr, gp, gd, out.reason,
		 wr ? wr : "?", wp ? wp : "?", wd ? wd : "?");
	conf_result(t, id, ok, why);
}

static void run_case(struct conf_tally *t, struct mdns *z, yaml_document_t *doc, const char *id,
		     yaml_node_t *tc)
{
	if (!tc || tc->type != YAML_MAPPING_NODE) {
		conf_result(t, id, 0, "not a mapping");
		return;
	}
	run_check(t, z, doc, id, tc, 1);
	if (has_variant(doc, tc, "_rfc9091")) {
		char id2[300];
		snprintf(id2, sizeof(id2), "%s (plain RFC 7489)", id);
		run_check(t, z, doc, id2, tc, 0);
	}
	if (has_variant(doc, tc, "_dmarcbis")) {
		char id2[300];
		snprintf(id2, sizeof(id2), "%s (DMARCbis tree walk)", id);
		run_check(t, z, doc, id2, tc, 2);
	}
}

static void run_dmarc(int *status)
{
	struct conf_tally t = {"dmarc-project-cases", 0, 0, 0};
	const char *path = conf_path("mail-suites/dmarc-project-cases/dmarc-cases.yml");
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("dmarc-project-cases: cannot open %s\n", path);
		*status = 1;
		return;
	}
	printf("dmarc-project-cases: mode RFC 7489 + RFC 9091 (np=): *_rfc9091 fields replace "
	       "the plain ones; cases with such fields are also checked in plain RFC 7489 mode "
	       "(DMARC_F_NO_NP); *_dmarcbis variants in the DMARCbis tree-walk mode (DMARC_F_TREEWALK)\n");
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&p, &doc)) {
			printf("dmarc-project-cases: YAML error: %s\n", p.problem ? p.problem : "?");
			*status = 1;
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		struct mdns *z = mdns_zone_new();
		char err[256];
		yaml_node_t *zd = mdns_yaml_get(&doc, root, "zonedata");
		if (!z || (zd && mdns_zone_load_openspf(z, &doc, zd, err, sizeof(err)) < 0)) {
			printf("dmarc-project-cases: zonedata: %s\n", err);
			*status = 1;
		}
		yaml_node_t *tests = mdns_yaml_get(&doc, root, "tests");
		if (z && tests && tests->type == YAML_MAPPING_NODE)
			for (yaml_node_pair_t *kv = tests->data.mapping.pairs.start;
			     kv < tests->data.mapping.pairs.top; kv++) {
				const char *id =
					mdns_yaml_str(yaml_document_get_node(&doc, kv->key), NULL);
				run_case(&t, z, &doc, id ? id : "?",
					 yaml_document_get_node(&doc, kv->value));
			}
		mdns_free(z);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	fclose(f);
	conf_report(&t);
	if (t.passed < FLOOR_DMARC)
		*status = 1;
}

/* One argument of checkPublicSuffix: 'text' or null. Returns the position
 * after it, or NULL on a malformed line. */
static const char *psl_arg(const char *s, char *out, size_t cap, int *isnull)
{
	while (*s == ' ' || *s == ',' || *s == '(')
		s++;
	if (strncmp(s, "null", 4) == 0) {
		*isnull = 1;
		out[0] = '\0';
		return s + 4;
	}
	if (*s != '\'')
		return NULL;
	const char *e = strchr(s + 1, '\'');
	if (!e || (size_t)(e - s - 1) >= cap)
		return NULL;
	*isnull = 0;
	memcpy(out, s + 1, (size_t)(e - s - 1));
	out[e - s - 1] = '\0';
	return e + 1;
}

static void run_psl(int *status)
{
	struct conf_tally t = {"psl-tests", 0, 0, 0};
	psl_ctx_t *psl = psl_load_file(conf_path("mail-suites/psl-tests/public_suffix_list.dat"));
	size_t len;
	char *text = conf_read(conf_path("mail-suites/psl-tests/test_psl.txt"), &len);
	if (!psl || !text) {
		printf("psl-tests: cannot load the list or the vectors\n");
		*status = 1;
		psl_free(psl);
		free(text);
		return;
	}
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, "checkPublicSuffix(", 18) == 0) {
			char in[256], want[256], got[256];
			int in_null, want_null;
			const char *r = psl_arg(line + 17, in, sizeof(in), &in_null);
			r = r ? psl_arg(r, want, sizeof(want), &want_null) : NULL;
			if (!r) {
				conf_result(&t, line, 0, "malformed vector");
			} else {
				int rc = in_null ? -1 : dmarc_registrable_domain(psl, in, got,
										 sizeof(got));
				int ok = want_null ? rc < 0 : rc == 0 && strcmp(got, want) == 0;
				char why[600];
				snprintf(why, sizeof(why), "got %s", rc < 0 ? "null" : got);
				conf_result(&t, line, ok, why);
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	psl_free(psl);
	free(text);
	conf_report(&t);
	if (t.passed < FLOOR_PSL)
		*status = 1;
}

/* ---- aggregate report parser ---- */

/* The JSON's value at a dotted path, as our parser would spell it. */
static void jnorm(json_t *v, char *out, size_t cap)
{
	out[0] = '\0';
	if (json_is_string(v))
		snprintf(out, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else
		return;
	static const char *const map[][2] = {
		{"unspecified", ""}, {"relaxed", "r"}, {"strict", "s"}, {"mailfrom", "mfrom"},
	};
	char low[512];
	size_t i;
	for (i = 0; out[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)out[i]);
	low[i] = '\0';
	for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++)
		if (strcmp(low, map[k][0]) == 0)
			snprintf(out, cap, "%s", map[k][1]);
}

static json_t *jget(json_t *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf, *dot; o && s; s = dot ? dot + 1 : NULL) {
		dot = strchr(s, '.');
		if (dot)
			*dot = '\0';
		o = json_object_get(o, s);
	}
	return o;
}

/* Compare one field (case-insensitively: enum spellings differ in case). */
static int same(char *why, size_t cap, json_t *o, const char *path, const char *got)
{
	char want[512];
	jnorm(jget(o, path), want, sizeof(want));
	if (strcasecmp(want, got) == 0)
		return 1;
	if (!why[0])
		snprintf(why, cap, "%s: got \"%s\", want \"%s\"", path, got, want);
	return 0;
}

static int same_num(char *why, size_t cap, json_t *o, const char *path, long long got)
{
	char g[32];
	snprintf(g, sizeof(g), "%lld", got);
	return same(why, cap, o, path, g);
}

static int compare_auth(char *why, size_t cap, json_t *arr, const struct dmarc_fb_auth *a,
			size_t n, int dkim)
{
	int ok = json_array_size(arr) == n;
	if (!ok && !why[0])
		snprintf(why, cap, "%s results: got %zu, want %zu", dkim ? "dkim" : "spf", n,
			 json_array_size(arr));
	for (size_t i = 0; ok && i < n; i++) {
		json_t *e = json_array_get(arr, i);
		ok &= same(why, cap, e, "domain", a[i].domain);
		ok &= same(why, cap, e, "result", a[i].result);
		ok &= same(why, cap, e, dkim ? "selector" : "scope", dkim ? a[i].selector : a[i].scope);
	}
	return ok;
}

static int compare_report(const struct dmarc_feedback *f, json_t *j, char *why, size_t cap)
{
	int ok = 1;
	ok &= same(why, cap, j, "report_metadata.org_name", f->org_name);
	ok &= same(why, cap, j, "report_metadata.email", f->email);
	ok &= same(why, cap, j, "report_metadata.extra_contact_info", f->extra_contact);
	ok &= same(why, cap, j, "report_metadata.report_id", f->report_id);
	ok &= same_num(why, cap, j, "report_metadata.date_range.begin", f->begin);
	ok &= same_num(why, cap, j, "report_metadata.date_range.end", f->end);
	ok &= same(why, cap, j, "policy_published.domain", f->domain);
	ok &= same(why, cap, j, "policy_published.adkim", f->adkim);
	ok &= same(why, cap, j, "policy_published.aspf", f->aspf);
	ok &= same(why, cap, j, "policy_published.p", f->p);
	ok &= same(why, cap, j, "policy_published.sp", f->sp);
	if (jget(j, "policy_published.np"))
		ok &= same(why, cap, j, "policy_published.np", f->np);
	ok &= same(why, cap, j, "policy_published.fo", f->fo);
	json_t *recs = json_object_get(j, "record");
	if (json_array_size(recs) != f->nrecord) {
		if (!why[0])
			snprintf(why, cap, "records: got %zu, want %zu", f->nrecord,
				 json_array_size(recs));
		return 0;
	}
	for (size_t i = 0; i < f->nrecord; i++) {
		const struct dmarc_fb_record *r = &f->record[i];
		json_t *e = json_array_get(recs, i);
		ok &= same(why, cap, e, "row.source_ip", r->source_ip);
		ok &= same_num(why, cap, e, "row.count", (long long)r->count);
		ok &= same(why, cap, e, "row.policy_evaluated.disposition", r->disposition);
		ok &= same(why, cap, e, "row.policy_evaluated.dkim", r->dkim);
		ok &= same(why, cap, e, "row.policy_evaluated.spf", r->spf);
		ok &= same(why, cap, e, "identifiers.header_from", r->header_from);
		ok &= same(why, cap, e, "identifiers.envelope_from", r->envelope_from);
		ok &= compare_auth(why, cap, jget(e, "auth_results.dkim"), r->dkim_res, r->ndkim, 1);
		ok &= compare_auth(why, cap, jget(e, "auth_results.spf"), r->spf_res, r->nspf, 0);
	}
	return ok;
}

static void run_feedback(int *status)
{
	struct conf_tally t = {"dmarc-feedback", 0, 0, 0};
	for (int n = 1; n <= 5; n++) {
		char rel[256], id[16], why[512] = "";
		snprintf(id, sizeof(id), "%03d.xml", n);
		snprintf(rel, sizeof(rel),
			 "mail-suites/mail-auth-resources/resources/dmarc-feedback/%03d.xml", n);
		size_t len;
		char *xml = conf_read(conf_path(rel), &len);
		snprintf(rel, sizeof(rel),
			 "mail-suites/mail-auth-resources/resources/dmarc-feedback/%03d.json", n);
		json_error_t jerr;
		json_t *j = json_load_file(conf_path(rel), 0, &jerr);
		struct dmarc_feedback f;
		int ok = 0;
		if (!xml || !j) {
			snprintf(why, sizeof(why), "cannot read the sample or its JSON");
		} else if (dmarc_feedback_parse(xml, len, &f, why, sizeof(why)) == 0) {
			ok = compare_report(&f, j, why, sizeof(why));
		}
		if (xml)
			dmarc_feedback_fini(&f);
		conf_result(&t, id, ok, why);
		json_decref(j);
		free(xml);
	}
	conf_report(&t);
	if (t.passed < FLOOR_FEEDBACK)
		*status = 1;
}

int main(void)
{
	int status = 0;
	run_dmarc(&status);
	run_psl(&status);
	run_feedback(&status);
	return status;
}
