/*
 * mail_content: what the gateway reads in a message besides its
 * authentication: the MIME structure and the From domain, attachment
 * policy (by content, archives opened), malware (clamd over the whole
 * message, YARA over every decoded part and archive entry), URLs and
 * attachment hashes against the indicator store, BEC checks, and on
 * outbound mail the DLP patterns and the outbound hold; and the DKIM
 * signature on outbound mail.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "detect/intel.h"
#include "mail/arc.h"
#include "mail/attach.h"
#include "mail/bec.h"
#include "mail/clamd.h"
#include "mail/dkim.h"
#include "mail/dlp.h"
#include "mail/mail_int.h"
#include "mail/yara_scan.h"

struct mail_content {
	struct attach_policy pol;
	/* An attachment context serialises its libmagic calls and costs
	 * milliseconds to load: a pool, one taken per message and made on
	 * demand, so messages on different connections are typed at once. */
	pthread_mutex_t pool_mu;
	struct attach_ctx **pool_free, **pool_all;
	size_t nfree, nall;
	struct bec *bec;
	struct dlp *dlp;
	struct yara_rules *yara;
	struct dkim_signer *signer; /* dkim_domain's: also seals ARC */
	/* Per-domain signing keys (mail.dkim_keys), chosen by the From domain. */
	struct dkim_signer **signers;
	char **sign_domains;
	size_t nsigners;
	/* BEC configuration kept alive for the checker. */
	struct bec_person *people;
	const char **people_addr;
	size_t npeople;
	char **people_names;
};

static enum attach_action to_attach(enum mail_action a)
{
	return a >= MAIL_ACT_REJECT ? ATTACH_REJECT : a >= MAIL_ACT_QUARANTINE ? ATTACH_QUARANTINE
									  : ATTACH_ALLOW;
}


/* "Taro Yamada <taro@example.com>" into name and address. */
static int split_person(const char *s, char **name, char **addr)
{
	const char *lt = strchr(s, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	if (!lt || !gt) {
		*name = strdup(s);
		*addr = NULL;
		return *name ? 0 : -1;
	}
	size_t nl = (size_t)(lt - s);
	while (nl > 0 && (s[nl - 1] == ' ' || s[nl - 1] == '"'))
		nl--;
	const char *ns = s;
	while (*ns == ' ' || *ns == '"') {
		ns++;
		nl = nl ? nl - 1 : 0;
	}
	*name = strndup(ns, nl);
	*addr = strndup(lt + 1, (size_t)(gt - lt - 1));
	return *name && *addr ? 0 : -1;
}

/* A signer for domain/selector from a PEM file; NULL with err set. */
static struct dkim_signer *load_signer(const char *domain, const char *selector,
				       const char *path, const char *key, struct buf *err)
{
	char e[256] = "";
	struct buf pem;
	buf_init(&pem, 64 << 10);
	if (buf_read_file(&pem, path) < 0 || pem.len == 0) {
		buf_fini(&pem);
		buf_printf(err, "%s: cannot read %s", key, path);
		return NULL;
	}
	struct dkim_signer *s = dkim_signer_new(domain, selector, pem.p, pem.len, NULL, e, sizeof(e));
	buf_fini(&pem);
	if (!s)
		buf_printf(err, "%s: %s: %s", key, path, e);
	return s;
}

int mail_content_init(struct mail_gw *g, struct buf *err)
{
	const struct mail_config *cfg = g->cfg;
	struct mail_content *c = calloc(1, sizeof(*c));
	char e[256] = "";
	if (!c)
		return M_ENOMEM;
	g->content = c;
	attach_policy_default(&c->pol);
	c->pol.cls[ATTACH_EXECUTABLE] = to_attach(cfg->act_executable);
	c->pol.cls[ATTACH_SCRIPT] = to_attach(cfg->act_script);
	c->pol.cls[ATTACH_SHORTCUT] = to_attach(cfg->act_shortcut);
	c->pol.cls[ATTACH_DISK_IMAGE] = to_attach(cfg->act_disk_image);
	c->pol.cls[ATTACH_OFFICE_MACRO] = to_attach(cfg->act_macro);
	c->pol.kind[ATTACH_F_ENCRYPTED] = to_attach(cfg->act_encrypted);
	c->pol.kind[ATTACH_F_DOUBLE_EXT] = to_attach(cfg->act_double_ext);
	c->pol.kind[ATTACH_F_MISMATCH] = to_attach(cfg->act_double_ext);
	c->pol.kind[ATTACH_F_BOMB] = to_attach(cfg->act_bomb);
	c->pol.kind[ATTACH_F_LIMIT] = to_attach(cfg->act_bomb);
	pthread_mutex_init(&c->pool_mu, NULL);
	/* BEC: our domains, protected people, finance addresses. */
	size_t np = cfg->protected_names.n;
	c->people = calloc(np ? np : 1, sizeof(*c->people));
	c->people_names = calloc(np ? np : 1, sizeof(char *));
	c->people_addr = calloc(np ? np : 1, sizeof(char *));
	if (!c->people || !c->people_names || !c->people_addr)
		return M_ENOMEM;
	for (size_t i = 0; i < np; i++) {
		char *name = NULL, *addr = NULL;
		if (split_person(cfg->protected_names.v[i], &name, &addr) < 0) {
			free(name);
			free(addr);
			return M_ENOMEM;
		}
		c->people_names[i] = name;
		c->people_addr[i] = addr;
		c->people[i].name = name;
		c->people[i].addrs = addr ? &c->people_addr[i] : NULL;
		c->people[i].n_addrs = addr ? 1 : 0;
		c->npeople++;
	}
	struct bec_conf bc = {0};
	bc.our_domains = (const char *const *)cfg->local_domains.v;
	bc.n_our_domains = cfg->local_domains.n;
	bc.people = c->people;
	bc.n_people = c->npeople;
	bc.finance_addrs = (const char *const *)cfg->finance_addresses.v;
	bc.n_finance_addrs = cfg->finance_addresses.n;
	c->bec = bec_new(&bc, e, sizeof(e));
	if (!c->bec) {
		buf_printf(err, "mail: BEC checks: %s", e);
		return M_EINVAL;
	}
	struct dlp_conf dc = {0};
	dc.keywords = (const char *const *)cfg->dlp_keywords.v;
	dc.n_keywords = cfg->dlp_keywords.n;
	size_t npat = cfg->dlp_patterns.n;
	struct dlp_pattern *pats = calloc(npat ? npat : 1, sizeof(*pats));
	char **names = calloc(npat ? npat : 1, sizeof(char *));
	for (size_t i = 0; pats && names && i < npat; i++) {
		const char *v = cfg->dlp_patterns.v[i];
		const char *eq = strchr(v, '=');
		names[i] = strndup(v, (size_t)(eq - v));
		pats[i].name = names[i];
		pats[i].regex = eq + 1;
	}
	dc.patterns = pats;
	dc.n_patterns = npat;
	c->dlp = pats && names ? dlp_new(&dc, e, sizeof(e)) : NULL;
	for (size_t i = 0; names && i < npat; i++)
		free(names[i]);
	free(names);
	free(pats);
	if (!c->dlp) {
		buf_printf(err, "mail.dlp_keywords / dlp_patterns: %s", e[0] ? e : "out of memory");
		return M_EINVAL;
	}
	if (cfg->yara_rules[0]) {
		char errs[2048] = "";
		size_t nbad = 0;
		if (yara_rules_load_dir(cfg->yara_rules, &c->yara, errs, sizeof(errs), &nbad) < 0 ||
		    !c->yara) {
			buf_printf(err, "mail.yara_rules: %s", errs[0] ? errs : "cannot load the rules");
			return M_EINVAL;
		}
		if (nbad)
			log_msg(LOG_WARN, "mail", "event=yara_rules_skipped files=%zu errors=\"%s\"", nbad,
				errs);
		log_msg(LOG_INFO, "mail", "event=yara_rules_loaded rules=%zu files=%zu",
			yara_rules_count(c->yara), yara_rules_files(c->yara));
	}
	if (cfg->dkim_domain[0]) {
		c->signer = load_signer(cfg->dkim_domain, cfg->dkim_selector, cfg->dkim_key,
					"mail.dkim_key", err);
		if (!c->signer)
			return M_EINVAL;
	}
	size_t nk = cfg->dkim_keys.n;
	c->signers = calloc(nk ? nk : 1, sizeof(*c->signers));
	c->sign_domains = calloc(nk ? nk : 1, sizeof(char *));
	if (!c->signers || !c->sign_domains)
		return M_ENOMEM;
	for (size_t i = 0; i < nk; i++) {
		/* "domain:selector:/path/to/key.pem" (checked by mail_conf). */
		const char *v = cfg->dkim_keys.v[i];
		const char *c1 = strchr(v, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *dom = strndup(v, (size_t)(c1 - v));
		char *sel = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
		struct dkim_signer *sg = dom && sel ? load_signer(dom, sel, c2 + 1, "mail.dkim_keys", err)
						    : NULL;
		free(sel);
		if (!sg) {
			free(dom);
			return M_EINVAL;
		}
		c->signers[c->nsigners] = sg;
		c->sign_domains[c->nsigners++] = dom;
	}
	return 0;
}

void mail_content_fini(struct mail_gw *g)
{
	struct mail_content *c = g->content;
	if (!c)
		return;
	for (size_t i = 0; i < c->nall; i++)
		attach_ctx_free(c->pool_all[i]);
	free(c->pool_all);
	free(c->pool_free);
	pthread_mutex_destroy(&c->pool_mu);
	bec_free(c->bec);
	dlp_free(c->dlp);
	yara_rules_free(c->yara);
	dkim_signer_free(c->signer);
	for (size_t i = 0; i < c->nsigners; i++) {
		dkim_signer_free(c->signers[i]);
		free(c->sign_domains[i]);
	}
	free(c->signers);
	free(c->sign_domains);
	for (size_t i = 0; i < c->npeople; i++) {
		free(c->people_names[i]);
		free((char *)c->people_addr[i]);
	}
	free(c->people);
	free(c->people_names);
	free(c->people_addr);
	free(c);
	g->content = NULL;
}

void mail_content_parse(struct mail_gw *g, struct mail_eval *e)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	if (mime_parse(e->s->m, &lim, &e->mm) < 0 || !e->mm) {
		e->mm = NULL;
		mail_find(e, "mime", MAIL_ACT_TAG, 10, "the message's MIME structure cannot be read");
		return;
	}
	const struct mime_msg *mm = e->mm;
	if (mm->nfrom > 1 || mm->from.n > 1) {
		mail_find(e, "multiple-from", g->cfg->act_multiple_from, 0,
			  "%zu From fields with %zu addresses: the author is ambiguous", mm->nfrom,
			  mm->from.n);
		if (g->cfg->act_multiple_from == MAIL_ACT_REJECT)
			snprintf(e->reject_text, sizeof(e->reject_text),
				 "Multiple From addresses are not accepted (RFC 5322 3.6.2)");
		return; /* DMARC has no single domain to check */
	}
	if (mm->from.n == 1 && mm->from.v[0].valid) {
		e->from_addr = mm->from.v[0].addr;
		e->from_name = mm->from.v[0].display;
		snprintf(e->from_domain, sizeof(e->from_domain), "%s", mm->from.v[0].domain);
	} else if (mm->nfrom == 0) {
		mail_find(e, "no-from", MAIL_ACT_TAG, 10, "the message has no From field");
	}
}

struct visit {
	struct mail_gw *g;
	struct mail_eval *e;
	char *yara_hit;
};

/* Every decoded part and archive entry goes through YARA. */
static void visit_part(void *arg, const char *path, const unsigned char *data, size_t len,
		       int partial, enum attach_class cls)
{
	(void)partial;
	(void)cls;
	struct visit *v = arg;
	struct mail_content *c = v->g->content;
	if (!c->yara || !data || !len)
		return;
	struct yara_result *yr = malloc(sizeof(*yr));
	if (!yr)
		return;
	if (yara_scan_mem(c->yara, data, len, 10, yr) >= 0 && yr->n > 0) {
		v->e->malware++;
		mail_find(v->e, "yara", v->g->cfg->act_malware, 0, "YARA rule %s matched %s",
			  yr->m[0].rule, path);
		snprintf(v->e->reject_text, sizeof(v->e->reject_text), "Malware found (YARA %s)",
			 yr->m[0].rule);
	}
	free(yr);
}

static struct attach_ctx *attach_take(struct mail_content *c)
{
	struct attach_ctx *a = NULL;
	pthread_mutex_lock(&c->pool_mu);
	if (c->nfree > 0) {
		a = c->pool_free[--c->nfree];
	} else {
		char e[128];
		struct attach_ctx **all = realloc(c->pool_all, (c->nall + 1) * sizeof(*all));
		struct attach_ctx **fr = realloc(c->pool_free, (c->nall + 1) * sizeof(*fr));
		if (all)
			c->pool_all = all;
		if (fr)
			c->pool_free = fr;
		if (all && fr && (a = attach_ctx_new(e, sizeof(e))))
			c->pool_all[c->nall++] = a;
	}
	pthread_mutex_unlock(&c->pool_mu);
	return a;
}

static void attach_give(struct mail_content *c, struct attach_ctx *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&c->pool_mu);
	c->pool_free[c->nfree++] = a;
	pthread_mutex_unlock(&c->pool_mu);
}

static enum mail_action from_attach(enum attach_action a)
{
	return a == ATTACH_REJECT ? MAIL_ACT_REJECT : a == ATTACH_QUARANTINE ? MAIL_ACT_QUARANTINE
									   : MAIL_ACT_NONE;
}

static void scan_attachments(struct mail_gw *g, struct mail_eval *e)
{
	struct mail_content *c = g->content;
	struct attach_ctx *ac = attach_take(c);
	struct visit v = {g, e, NULL};
	for (size_t i = 0; e->mm && i < e->mm->nparts; i++) {
		const struct mime_part *p = &e->mm->parts[i];
		if (p->is_multipart || !p->data)
			continue;
		if (!p->is_attachment) {
			visit_part(&v, p->ctype, p->data, p->len, 0, ATTACH_OTHER);
			continue;
		}
		if (!ac) {
			mail_find(e, "attachment", MAIL_ACT_TAG, 0, "attachment types cannot be checked");
			break;
		}
		struct attach_report rep;
		memset(&rep, 0, sizeof(rep));
		if (attach_scan(ac, &c->pol, p->filename, p->data, p->len, visit_part, &v, &rep) < 0) {
			mail_find(e, "attachment", MAIL_ACT_TAG, 0, "attachment %s cannot be read",
				  p->filename);
			attach_report_fini(&rep);
			continue;
		}
		for (size_t k = 0; k < rep.n; k++) {
			const struct attach_finding *f = &rep.f[k];
			if (f->action == ATTACH_ALLOW && f->kind == ATTACH_F_CLASS)
				continue;
			mail_find(e, "attachment", from_attach(f->action), 0, "%s %s: %s (%s)",
				  attach_kind_name(f->kind), f->path, attach_class_name(f->cls),
				  f->detail);
		}
		attach_report_fini(&rep);
	}
	attach_give(c, ac);
}

static void scan_clamd(struct mail_gw *g, struct mail_eval *e)
{
	if (!g->cfg->clamd[0])
		return;
	size_t len;
	char *text = msg_render(e->s->m, &len);
	if (!text)
		return;
	struct clamd_result cr;
	struct clamd_cfg cc = {0};
	cc.addr = g->cfg->clamd;
	cc.io_timeout_ms = 60000;
	memset(&cr, 0, sizeof(cr));
	enum clamd_status st = clamd_scan(&cc, text, len, &cr);
	free(text);
	if (st == CLAMD_TOOBIG) {
		mail_find(e, "malware", MAIL_ACT_TAG, 0, "too big for the malware scanner: %s", cr.err);
		return;
	}
	if (st == CLAMD_ERROR) {
		if (g->cfg->clamd_failure_accept) {
			mail_find(e, "malware", MAIL_ACT_TAG, 0, "not scanned for malware: %s", cr.err);
		} else {
			e->tempfail = 1;
			snprintf(e->tf_why, sizeof(e->tf_why), "Malware scanner unavailable, try again later");
		}
		return;
	}
	if (st == CLAMD_INFECTED) {
		e->malware++;
		mail_find(e, "malware", g->cfg->act_malware, 0, "ClamAV: %s", cr.name);
		snprintf(e->reject_text, sizeof(e->reject_text), "Malware found (%s)", cr.name);
	}
}

/* URLs of the body parts, and attachment hashes, against the indicators. */
static void scan_intel(struct mail_gw *g, struct mail_eval *e)
{
	url_list_init(&e->urls);
	e->urls_done = 1;
	for (size_t i = 0; e->mm && i < e->mm->nparts; i++) {
		const struct mime_part *p = &e->mm->parts[i];
		if (!p->data || !(p->is_body_text || p->is_body_html))
			continue;
		size_t ul = 0;
		char *u = mime_to_utf8(&e->mm->arena, p->charset, (const char *)p->data, p->len, &ul);
		urls_extract(u ? u : (const char *)p->data, u ? ul : p->len, p->is_body_html, &e->urls);
	}
	for (size_t i = 0; i < e->urls.n; i++)
		if (e->urls.item[i].text_mismatch)
			mail_find(e, "url", MAIL_ACT_TAG, 15, "a link shows %s but goes to %s",
				  e->urls.item[i].shown_host ? e->urls.item[i].shown_host : "?",
				  e->urls.item[i].host);
	struct intel_set *set = g->deps.det ? detect_intel_ref(g->deps.det) : NULL;
	if (!set)
		return;
	int64_t now = clock_now_us();
	for (size_t i = 0; i < e->urls.n; i++) {
		const struct url_item *u = &e->urls.item[i];
		const struct intel_indicator *hit = intel_lookup_url(set, u->url, strlen(u->url), now);
		if (!hit && u->host)
			hit = intel_lookup_domain(set, u->host, strlen(u->host), now);
		if (hit)
			mail_find(e, "url-reputation", MAIL_ACT_QUARANTINE, 0,
				  "link to %s is a known indicator (%s, source %s)", u->host, hit->value,
				  hit->meta.source ? hit->meta.source : "intel");
	}
	for (size_t i = 0; e->mm && i < e->mm->nparts; i++) {
		const struct mime_part *p = &e->mm->parts[i];
		if (!p->is_attachment || !p->sha256[0])
			continue;
		const struct intel_indicator *hit = intel_lookup_hash(set, p->sha256, 64, now);
		if (!hit)
			hit = intel_lookup_hash(set, p->md5, 32, now);
		if (hit) {
			e->malware++;
			mail_find(e, "hash-reputation", g->cfg->act_malware, 0,
				  "attachment %s is a known indicator (%s)", p->filename,
				  hit->meta.source ? hit->meta.source : "intel");
		}
	}
	if (e->from_addr) {
		const struct intel_indicator *hit =
			intel_lookup_email(set, e->from_addr, strlen(e->from_addr), now);
		if (hit)
			mail_find(e, "sender-reputation", MAIL_ACT_QUARANTINE, 0,
				  "sender %s is a known indicator", e->from_addr);
	}
	intel_set_unref(set);
}

static void scan_bec(struct mail_gw *g, struct mail_eval *e)
{
	struct mail_content *c = g->content;
	if (!e->mm || e->outbound)
		return;
	const char *reply[BEC_MAX_INPUT];
	size_t nr = 0;
	for (size_t i = 0; i < e->mm->reply_to.n && nr < BEC_MAX_INPUT; i++)
		reply[nr++] = e->mm->reply_to.v[i].addr;
	unsigned char first[BEC_MAX_INPUT];
	size_t nrc = e->s->nrcpt < BEC_MAX_INPUT ? e->s->nrcpt : BEC_MAX_INPUT;
	for (size_t i = 0; i < nrc; i++)
		first[i] = bec_is_finance(c->bec, e->s->rcpt[i]) && e->from_addr
				   ? (unsigned char)mail_corr_first(g, e->from_addr, e->s->rcpt[i])
				   : 0;
	struct bec_input in = {0};
	in.from_name = e->from_name;
	in.from_addr = e->from_addr;
	in.reply_to = reply;
	in.n_reply_to = nr;
	in.return_path = e->s->mail_from;
	in.rcpts = (const char *const *)e->s->rcpt;
	in.first_time = first;
	in.n_rcpts = nrc;
	struct bec_findings out;
	if (bec_check(c->bec, &in, &out) < 0)
		return;
	for (size_t i = 0; i < out.n; i++)
		mail_find(e, "bec", MAIL_ACT_NONE, out.f[i].score, "%s", out.f[i].reason);
}

/* The text of an HTML part for DLP: tags become spaces, script and style
 * bodies go, the common entities and numeric references are decoded (so
 * "4111&#32;1111..." or digits split by <span>s are seen as written).
 * Returns a malloc'd string, or NULL. */
static char *html_text(const char *h, size_t n, size_t *out_len)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		if (h[i] == '<') {
			int skip_body = (n - i > 7 && !strncasecmp(h + i, "<script", 7)) ||
					(n - i > 6 && !strncasecmp(h + i, "<style", 6));
			const char *gt = memchr(h + i, '>', n - i);
			i = gt ? (size_t)(gt - h) + 1 : n;
			if (skip_body) {
				const char *end = NULL;
				for (size_t j = i; j + 2 < n && !end; j++)
					if (h[j] == '<' && h[j + 1] == '/')
						end = h + j;
				i = end ? (size_t)(end - h) : n;
			}
			/* Inline tags join text ("41<b>11</b>"); block tags part it. */
			continue;
		}
		if (h[i] == '&') {
			static const struct { const char *e; char c; } ent[] = {
				{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&nbsp;", ' '},
				{"&quot;", '"'}, {"&#39;", '\''}};
			size_t j;
			for (j = 0; j < sizeof(ent) / sizeof(ent[0]); j++) {
				size_t el = strlen(ent[j].e);
				if (n - i >= el && !strncasecmp(h + i, ent[j].e, el)) {
					o[k++] = ent[j].c;
					i += el;
					break;
				}
			}
			if (j < sizeof(ent) / sizeof(ent[0]))
				continue;
			if (n - i > 3 && h[i + 1] == '#') {
				int hex = h[i + 2] == 'x' || h[i + 2] == 'X';
				size_t p = i + 2 + (size_t)hex;
				unsigned long cp = 0;
				size_t digits = 0;
				while (p < n && digits < 7 &&
				       (hex ? isxdigit((unsigned char)h[p]) : isdigit((unsigned char)h[p]))) {
					char d = h[p];
					cp = cp * (hex ? 16 : 10) +
					     (unsigned long)(isdigit((unsigned char)d) ? d - '0'
										      : (tolower((unsigned char)d) - 'a' + 10));
					p++;
					digits++;
				}
				if (digits && p < n && h[p] == ';' && cp < 0x80) {
					o[k++] = (char)(cp ? cp : ' ');
					i = p + 1;
					continue;
				}
			}
		}
		o[k++] = h[i++];
	}
	o[k] = '\0';
	*out_len = k;
	return o;
}

/* DLP over several texts: each scan's items merged into acc by kind and name. */
static void dlp_add(const struct dlp *d, const char *text, size_t len, struct dlp_result *acc)
{
	struct dlp_result one;
	memset(&one, 0, sizeof(one));
	if (dlp_scan(d, text, len, &one) < 0 || one.n == 0) {
		dlp_result_fini(&one);
		return;
	}
	for (size_t i = 0; i < one.n; i++) {
		size_t k;
		for (k = 0; k < acc->n; k++)
			if (acc->item[k].kind == one.item[i].kind &&
			    strcmp(acc->item[k].name, one.item[i].name) == 0)
				break;
		if (k < acc->n) {
			acc->item[k].count += one.item[i].count;
			continue;
		}
		struct dlp_item *it = realloc(acc->item, (acc->n + 1) * sizeof(*it));
		if (!it)
			break;
		acc->item = it;
		acc->item[acc->n++] = one.item[i];
	}
	acc->total += one.total;
	dlp_result_fini(&one);
}

static void scan_outbound(struct mail_gw *g, struct mail_eval *e)
{
	struct mail_content *c = g->content;
	if (!e->outbound)
		return;
	struct dlp_result dr;
	memset(&dr, 0, sizeof(dr));
	for (size_t i = 0; e->mm && i < e->mm->nparts; i++) {
		const struct mime_part *p = &e->mm->parts[i];
		if (!p->data || !(p->is_body_text || p->is_body_html || !strncmp(p->ctype, "text/", 5)))
			continue;
		size_t ul = 0;
		char *u = mime_to_utf8(&e->mm->arena, p->charset, (const char *)p->data, p->len, &ul);
		const char *t = u ? u : (const char *)p->data;
		size_t tl = u ? ul : p->len;
		char *plain = NULL;
		if (p->is_body_html || !strcmp(p->ctype, "text/html"))
			plain = html_text(t, tl, &tl);
		dlp_add(c->dlp, plain ? plain : t, tl, &dr);
		free(plain);
	}
	if (e->mm && e->mm->subject)
		dlp_add(c->dlp, e->mm->subject, strlen(e->mm->subject), &dr);
	for (size_t i = 0; i < dr.n; i++) {
		const struct dlp_item *it = &dr.item[i];
		mail_find(e, "dlp", g->cfg->act_dlp, 0, "outbound mail carries %s %s x%zu%s%s%s",
			  dlp_kind_str(it->kind), it->name, it->count, it->n_samples ? " (" : "",
			  it->n_samples ? it->sample[0] : "", it->n_samples ? ")" : "");
	}
	dlp_result_fini(&dr);
	/* Recipients outside our domains: first-time ones are noted, too many
	 * of them hidden from each other or held. */
	size_t ext = 0, first = 0;
	char names[200] = "";
	for (size_t i = 0; i < e->s->nrcpt; i++) {
		const char *at = strrchr(e->s->rcpt[i], '@');
		if (!at || mail_is_local_domain(g, at + 1))
			continue;
		ext++;
		if (e->s->mail_from[0] && mail_corr_first(g, e->s->mail_from, e->s->rcpt[i]) &&
		    first++ < 3) {
			size_t l = strlen(names);
			snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", e->s->rcpt[i]);
		}
	}
	if (first)
		mail_find(e, "first-recipient", MAIL_ACT_NONE, 0,
			  "%zu first-time external recipient(s): %s%s", first, names,
			  first > 3 ? ", ..." : "");
	if (g->cfg->outbound_max_external > 0 && ext > (size_t)g->cfg->outbound_max_external) {
		if (g->cfg->external_bcc) {
			e->hide_recipients = 1;
			mail_find(e, "recipients", MAIL_ACT_NONE, 0,
				  "%zu external recipients: To and Cc hidden (undisclosed-recipients)", ext);
		} else {
			mail_find(e, "recipients", MAIL_ACT_QUARANTINE, 0,
				  "%zu external recipients, more than mail.outbound_max_external", ext);
		}
	}
	if (g->cfg->outbound_hold > 0)
		e->hold_outbound = 1;
}

void mail_content_scan(struct mail_gw *g, struct mail_eval *e)
{
	scan_attachments(g, e);
	scan_clamd(g, e);
	scan_intel(g, e);
	scan_bec(g, e);
	scan_outbound(g, e);
}

void mail_content_fini_eval(struct mail_eval *e)
{
	if (e->urls_done)
		url_list_fini(&e->urls);
	mime_free(e->mm);
	e->mm = NULL;
}

void mail_arc_seal(struct mail_gw *g, struct mail_eval *e, const char *ar_value,
		   struct milter_reply *r)
{
	struct mail_content *c = g->content;
	if (!g->cfg->arc_seal || !c->signer || e->outbound)
		return;
	/* The results part of our Authentication-Results: after the id and ';'. */
	const char *res = strchr(ar_value, ';');
	res = res ? res + 1 : "";
	while (*res == ' ' || *res == '\r' || *res == '\n' || *res == '\t')
		res++;
	enum arc_cv cv = e->auth_done && e->auth.arc_present ? e->auth.arc.cv : ARC_NONE;
	char *aar = NULL, *ams = NULL, *as = NULL;
	if (cv == ARC_FAIL ||
	    arc_seal(c->signer, e->s->m, g->authserv_id, res, cv, time(NULL), &aar, &ams, &as) < 0) {
		if (cv != ARC_FAIL)
			log_msg(LOG_WARN, "mail", "event=arc_seal_failed");
	} else {
		/* Each insert at the top: the seal ends up first. */
		char *v[3] = {aar, ams, as};
		static const char *const n[3] = {"ARC-Authentication-Results", "ARC-Message-Signature",
						 "ARC-Seal"};
		for (int i = 0; i < 3; i++) {
			size_t l = strlen(v[i]);
			char *sp = malloc(l + 2);
			if (!sp)
				break;
			sp[0] = ' ';
			memcpy(sp + 1, v[i], l + 1);
			milter_reply_op(r, MILTER_OP_INSERT, 0, n[i], sp);
			free(sp);
		}
	}
	free(aar);
	free(ams);
	free(as);
}

void mail_sign(struct mail_gw *g, struct mail_eval *e, struct milter_reply *r)
{
	struct mail_content *c = g->content;
	if (!e->outbound || !e->from_domain[0])
		return;
	const struct dkim_signer *sg = NULL;
	const char *dom = NULL;
	if (c->signer && strcasecmp(e->from_domain, g->cfg->dkim_domain) == 0) {
		sg = c->signer;
		dom = g->cfg->dkim_domain;
	}
	for (size_t i = 0; !sg && i < c->nsigners; i++)
		if (strcasecmp(e->from_domain, c->sign_domains[i]) == 0) {
			sg = c->signers[i];
			dom = c->sign_domains[i];
		}
	if (!sg)
		return;
	char *v = NULL;
	if (dkim_sign(sg, e->s->m, time(NULL), &v) == 0 && v) {
		/* dkim_sign's value starts after "DKIM-Signature: ". */
		size_t n = strlen(v);
		char *sp = malloc(n + 2);
		if (sp) {
			sp[0] = ' ';
			memcpy(sp + 1, v, n + 1);
			milter_reply_op(r, MILTER_OP_INSERT, 0, "DKIM-Signature", sp);
			free(sp);
		}
	} else {
		log_msg(LOG_WARN, "mail", "event=dkim_sign_failed domain=%s", dom);
	}
	free(v);
}
