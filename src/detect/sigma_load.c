/*
 * Loading Sigma: rule files and directories into the builder, field
 * mapping files, filters (exceptions kept beside the rules, the Sigma
 * filters specification) and the predicate and field tables that every
 * rule shares. Why a report per document instead of stopping at the first
 * bad rule: a rule set of thousands must load what it can and name each
 * rule it could not load, with the reason and the line.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/schema.h"
#include "detect/sigma_corr.h"
#include "detect/sigma_int.h"

#define SIGMA_MAX_FILE (4u << 20)
#define SIGMA_MAX_DIR_DEPTH 16
#define SIGMA_MAX_FILES 100000u

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static enum sigma_file_status add_text(struct sigma_builder *b, const char *name,
				       const char *text, size_t len,
				       sigma_report_fn fn, void *ctx,
				       struct buf *why);

/* ---- node arrays of the rule being built ---- */

int sigma_node_add(struct sigma_rule_build *rb, uint8_t type, uint32_t a,
		   uint32_t n, uint32_t *out)
{
	struct sigma_rule *r = rb->r;

	if (r->n_nodes == rb->nodes_cap) {
		uint32_t cap = rb->nodes_cap ? rb->nodes_cap * 2 : 32;
		struct sigma_node *nn;

		if (cap > SIGMA_MAX_RULE_NODES)
			return M_ELIMIT;
		nn = realloc(r->nodes, cap * sizeof(*nn));
		if (!nn)
			return M_ENOMEM;
		r->nodes = nn;
		rb->nodes_cap = cap;
	}
	r->nodes[r->n_nodes] = (struct sigma_node){ .type = type, .a = a, .n = n };
	*out = r->n_nodes++;
	return 0;
}

int sigma_node_group(struct sigma_rule_build *rb, uint8_t type,
		     const uint32_t *kids, uint32_t n, uint32_t *out)
{
	struct sigma_rule *r = rb->r;
	uint32_t first = r->n_kids;

	if (r->n_kids + n > rb->kids_cap) {
		uint32_t cap = rb->kids_cap ? rb->kids_cap : 32;
		uint32_t *nk;

		while (cap < r->n_kids + n)
			cap *= 2;
		if (cap > SIGMA_MAX_RULE_NODES * 4)
			return M_ELIMIT;
		nk = realloc(r->kids, cap * sizeof(*nk));
		if (!nk)
			return M_ENOMEM;
		r->kids = nk;
		rb->kids_cap = cap;
	}
	memcpy(r->kids + first, kids, n * sizeof(*kids));
	r->n_kids += n;
	return sigma_node_add(rb, type, first, n, out);
}

/* ---- interning of fields and predicates ---- */

static int grow_table(uint32_t **tab, uint32_t *mask, uint32_t used,
		      uint64_t (*hash_of)(void *, uint32_t), void *ctx)
{
	uint32_t cap = *mask ? (*mask + 1) * 2 : 1024;
	uint32_t *nt;

	if (*mask && used * 2 < *mask)
		return 0;
	nt = calloc(cap, sizeof(*nt));
	if (!nt)
		return M_ENOMEM;
	for (uint32_t i = 0; *mask && i <= *mask; i++) {
		uint32_t v = (*tab)[i];
		if (!v)
			continue;
		uint64_t h = hash_of(ctx, v - 1);
		uint32_t j = (uint32_t)h & (cap - 1);
		while (nt[j])
			j = (j + 1) & (cap - 1);
		nt[j] = v;
	}
	free(*tab);
	*tab = nt;
	*mask = cap - 1;
	return 0;
}

static uint64_t field_hash_of(void *ctx, uint32_t i)
{
	struct sigma_ruleset *rs = ctx;

	return sigma_name_hash(rs->fields[i].name, rs->fields[i].nlen);
}

int sigma_field_intern(struct sigma_builder *b, const char *name, uint32_t *out)
{
	struct sigma_ruleset *rs = b->rs;
	uint64_t h = sigma_name_hash(name, strlen(name));
	uint32_t j;
	struct sigma_field *nf;
	int r;

	r = grow_table(&b->field_hash, &b->field_hash_mask, rs->n_fields,
		       field_hash_of, rs);
	if (r < 0)
		return r;
	for (j = (uint32_t)h & b->field_hash_mask; b->field_hash[j];
	     j = (j + 1) & b->field_hash_mask) {
		uint32_t i = b->field_hash[j] - 1;
		if (strcmp(rs->fields[i].name, name) == 0) {
			*out = i;
			return 0;
		}
	}
	if (rs->n_fields >= 65536)
		return M_ELIMIT;
	nf = realloc(rs->fields, (rs->n_fields + 1) * sizeof(*nf));
	if (!nf)
		return M_ENOMEM;
	rs->fields = nf;
	nf[rs->n_fields].name = strdup(name);
	if (!nf[rs->n_fields].name)
		return M_ENOMEM;
	nf[rs->n_fields].known = schema_lookup_x(name, strlen(name), &nf[rs->n_fields].xid);
	nf[rs->n_fields].nlen = (uint32_t)strlen(name);
	nf[rs->n_fields].alt = 0;
	b->field_hash[j] = rs->n_fields + 1;
	*out = rs->n_fields++;
	/* Windows events carry their items in EventData or, for some
	 * providers, UserData; a rule names the item either way. */
	if (strncmp(name, "winlog.event_data.", 18) == 0) {
		char alt[600];
		uint32_t a, self = *out;

		snprintf(alt, sizeof(alt), "winlog.user_data.%s", name + 18);
		r = sigma_field_intern(b, alt, &a);
		if (r < 0)
			return r;
		rs->fields[self].alt = a;
		*out = self;
	}
	return 0;
}

static void pred_key(const struct sigma_pred *p, struct buf *k)
{
	buf_reset(k);
	buf_printf(k, "%u|%u|%u|%u|%u|%u|%.17g|%u|", p->kind, p->arg, p->flags,
		   p->field, p->field2, p->plen, p->num, p->family);
	buf_append(k, p->addr, sizeof(p->addr));
	if (p->re)
		buf_puts(k, p->re);
	buf_cstr(k);
}

static uint64_t pred_hash_of(void *ctx, uint32_t i)
{
	struct sigma_builder *b = ctx;

	return sigma_name_hash(b->pred_keys[i], b->pred_klen[i]);
}

int sigma_pred_intern(struct sigma_builder *b, const struct sigma_pred *p,
		      uint32_t *out)
{
	struct sigma_ruleset *rs = b->rs;
	struct buf k;
	uint64_t h;
	uint32_t j;
	int r;

	buf_init(&k, 1 << 20);
	pred_key(p, &k);
	if (!k.p) {
		buf_fini(&k);
		return M_ENOMEM;
	}
	/* The key holds binary bytes (the address): its length is kept. */
	h = sigma_name_hash(k.p, k.len);
	r = grow_table(&b->pred_hash, &b->pred_hash_mask, rs->n_preds,
		       pred_hash_of, b);
	if (r < 0)
		goto out;
	for (j = (uint32_t)h & b->pred_hash_mask; b->pred_hash[j];
	     j = (j + 1) & b->pred_hash_mask) {
		uint32_t i = b->pred_hash[j] - 1;
		if (b->pred_klen[i] == k.len && memcmp(b->pred_keys[i], k.p, k.len) == 0) {
			*out = i;
			goto out;
		}
	}
	if (rs->n_preds >= SIGMA_MAX_PREDS) {
		r = M_ELIMIT;
		goto out;
	}
	if (rs->n_preds >= b->pred_cap) {
		/* Doubling: a corpus interns tens of thousands of predicates. */
		uint32_t cap = b->pred_cap ? b->pred_cap * 2 : 256;
		struct sigma_pred *gp = realloc(rs->preds, cap * sizeof(*gp));
		char **gk;
		uint32_t *gl;

		if (gp)
			rs->preds = gp;
		gk = gp ? realloc(b->pred_keys, cap * sizeof(*gk)) : NULL;
		if (gk)
			b->pred_keys = gk;
		gl = gk ? realloc(b->pred_klen, cap * sizeof(*gl)) : NULL;
		if (!gl) {
			r = M_ENOMEM;
			goto out;
		}
		b->pred_klen = gl;
		b->pred_cap = cap;
	}
	{
		struct sigma_pred *np = rs->preds;
		char **nk = b->pred_keys;

		b->pred_klen[rs->n_preds] = (uint32_t)k.len;
		np[rs->n_preds] = *p;
		np[rs->n_preds].re = xstrdup(p->re);
		np[rs->n_preds].pc = NULL;
		nk[rs->n_preds] = malloc(k.len + 1);
		if (!nk[rs->n_preds] || (p->re && !np[rs->n_preds].re)) {
			free(nk[rs->n_preds]);
			free(np[rs->n_preds].re);
			r = M_ENOMEM;
			goto out;
		}
		memcpy(nk[rs->n_preds], k.p, k.len + 1);
		b->pred_hash[j] = rs->n_preds + 1;
		*out = rs->n_preds++;
	}
out:
	buf_fini(&k);
	return r;
}

/* ---- field mappings ---- */

static int ls_match(const char *want, const char *have)
{
	return !want || !*want || (have && strcasecmp(want, have) == 0);
}

/* The event field for a Sigma field under the rule's logsource: the most
 * specific mapping whose logsource the rule's falls under; a listed name,
 * else its default pattern, else the name as written. */
const char *sigma_map_field(const struct sigma_builder *b,
			    const struct sigma_rule *r, const char *field,
			    char *tmp, size_t tmpsz)
{
	const struct sigma_mapping *best = NULL;
	int best_score = -1;

	if (r->ecs)   /* taxonomy: ecs names the event's own fields */
		return field;
	for (size_t i = 0; i < b->n_maps; i++) {
		const struct sigma_mapping *m = &b->maps[i];
		int score = 0;

		if (!ls_match(m->product, r->product) ||
		    !ls_match(m->category, r->category) ||
		    !ls_match(m->service, r->service))
			continue;
		score = (*m->product ? 1 : 0) + (*m->category ? 2 : 0) +
			(*m->service ? 2 : 0);
		/* A more specific mapping that does not list the field falls
		 * back to the less specific ones for it. */
		int listed = 0;
		for (size_t k = 0; k < m->n; k++)
			if (strcmp(m->from[k], field) == 0)
				listed = 1;
		if (!listed && !m->def)
			continue;
		if (listed)
			score += 8;
		if (score >= best_score) {   /* later files win ties */
			best = m;
			best_score = score;
		}
	}
	if (!best)
		return field;
	for (size_t k = 0; k < best->n; k++)
		if (strcmp(best->from[k], field) == 0)
			return best->to[k];
	{
		const char *ph = strstr(best->def, "{field}");
		int n;

		if (!ph)
			return best->def;
		n = snprintf(tmp, tmpsz, "%.*s%s%s", (int)(ph - best->def), best->def,
			     field, ph + 7);
		if (n < 0 || (size_t)n >= tmpsz)
			return field;
		return tmp;
	}
}

static const char *scalar_of(const struct conf_node *map, const char *key)
{
	const struct conf_node *n = conf_map_get(map, key);

	return conf_node_kind(n) == CONF_NODE_SCALAR && !conf_node_is_null(n) ?
	       conf_node_value(n) : NULL;
}

static int add_mapping_doc(struct sigma_builder *b, const char *file,
			   const struct conf_node *root, struct buf *err)
{
	const struct conf_node *ls = conf_map_get(root, "logsource");
	const struct conf_node *fields = conf_map_get(root, "fields");
	struct sigma_mapping m, *nm;
	const char *def = scalar_of(root, "default");

	memset(&m, 0, sizeof(m));
	m.product = strdup(ls && scalar_of(ls, "product") ? scalar_of(ls, "product") : "");
	m.category = strdup(ls && scalar_of(ls, "category") ? scalar_of(ls, "category") : "");
	m.service = strdup(ls && scalar_of(ls, "service") ? scalar_of(ls, "service") : "");
	m.def = xstrdup(def);
	m.file = strdup(file);
	if (!m.product || !m.category || !m.service || !m.file || (def && !m.def))
		goto nomem;
	if (fields && conf_node_kind(fields) != CONF_NODE_MAP) {
		buf_printf(err, "%s:%d:%d: fields must be a mapping", file,
			   conf_node_line(fields), conf_node_col(fields));
		goto bad;
	}
	for (const struct conf_node *k = conf_node_child(fields); k && conf_node_next(k);
	     k = conf_node_next(conf_node_next(k))) {
		const struct conf_node *v = conf_node_next(k);
		char **nf, **nt;

		if (conf_node_kind(v) != CONF_NODE_SCALAR) {
			buf_printf(err, "%s:%d:%d: a field maps to one name", file,
				   conf_node_line(v), conf_node_col(v));
			goto bad;
		}
		nf = realloc(m.from, (m.n + 1) * sizeof(*nf));
		if (!nf)
			goto nomem;
		m.from = nf;
		nt = realloc(m.to, (m.n + 1) * sizeof(*nt));
		if (!nt)
			goto nomem;
		m.to = nt;
		m.from[m.n] = strdup(conf_node_value(k));
		m.to[m.n] = strdup(conf_node_value(v));
		m.n++;
		if (!m.from[m.n - 1] || !m.to[m.n - 1])
			goto nomem;
	}
	nm = realloc(b->maps, (b->n_maps + 1) * sizeof(*nm));
	if (!nm)
		goto nomem;
	b->maps = nm;
	b->maps[b->n_maps++] = m;
	return 0;
nomem:
	buf_printf(err, "%s: out of memory", file);
bad:
	for (size_t i = 0; i < m.n; i++) {
		free(m.from[i]);
		free(m.to[i]);
	}
	free(m.from);
	free(m.to);
	free(m.product);
	free(m.category);
	free(m.service);
	free(m.def);
	free(m.file);
	return M_EINVAL;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	size_t n;

	if (!f)
		return M_EIO;
	p = malloc(SIGMA_MAX_FILE + 1);
	if (!p) {
		fclose(f);
		return M_ENOMEM;
	}
	n = fread(p, 1, SIGMA_MAX_FILE + 1, f);
	fclose(f);
	if (n > SIGMA_MAX_FILE) {
		free(p);
		return M_ELIMIT;
	}
	p[n] = '\0';
	*out = p;
	*len = n;
	return 0;
}

static int has_yaml_ext(const char *name)
{
	size_t n = strlen(name);

	return (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".yaml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Calls fn for each YAML file under path (or path itself), in name order. */
static int walk(const char *path, int depth, size_t *count,
		int (*fn)(void *, const char *), void *ctx)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (stat(path, &st) < 0)
		return M_EIO;
	if (!S_ISDIR(st.st_mode)) {
		if (++*count > SIGMA_MAX_FILES)
			return M_ELIMIT;
		return fn(ctx, path);
	}
	if (depth > SIGMA_MAX_DIR_DEPTH)
		return 0;
	d = opendir(path);
	if (!d)
		return M_EIO;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nn = realloc(names, nc * sizeof(*nn));
			if (!nn) {
				r = M_ENOMEM;
				break;
			}
			names = nn;
			cap = nc;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			r = M_ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char sub[4096];
		struct stat s2;

		if (snprintf(sub, sizeof(sub), "%s/%s", path, names[i]) >= (int)sizeof(sub))
			continue;
		if (stat(sub, &s2) < 0)
			continue;
		if (S_ISDIR(s2.st_mode))
			r = walk(sub, depth + 1, count, fn, ctx);
		else if (has_yaml_ext(names[i]))
			r = walk(sub, depth + 1, count, fn, ctx);
		if (r == M_EIO)
			r = 0;   /* an unreadable entry is reported by fn */
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

struct map_walk {
	struct sigma_builder *b;
	struct buf *err;
};

static int map_file(void *ctx, const char *path)
{
	struct map_walk *w = ctx;
	struct conf_doc doc;
	char *text;
	size_t len;
	int r;

	r = read_file(path, &text, &len);
	if (r < 0) {
		buf_printf(w->err, "%s: cannot read: %s", path, strerror(errno));
		return r;
	}
	r = conf_parse_multi(path, text, len, &doc, w->err);
	free(text);
	if (r < 0)
		return r;
	for (const struct conf_node *root = doc.root; r == 0 && root;
	     root = conf_node_next(root))
		r = add_mapping_doc(w->b, path, root, w->err);
	conf_doc_fini(&doc);
	return r;
}

int sigma_mapping_text(struct sigma_builder *b, const char *name,
		       const char *text, size_t len, struct buf *err);

/* Mappings from memory (the ones built into the binary). */
int sigma_mapping_text(struct sigma_builder *b, const char *name,
		       const char *text, size_t len, struct buf *err)
{
	struct conf_doc doc;
	int r = conf_parse_multi(name, text, len, &doc, err);

	if (r < 0)
		return r;
	for (const struct conf_node *root = doc.root; r == 0 && root;
	     root = conf_node_next(root))
		r = add_mapping_doc(b, name, root, err);
	conf_doc_fini(&doc);
	return r;
}

int sigma_rule_text(struct sigma_builder *b, const char *name, const char *text,
		    size_t len, sigma_report_fn fn, void *ctx);

int sigma_rule_text(struct sigma_builder *b, const char *name, const char *text,
		    size_t len, sigma_report_fn fn, void *ctx)
{
	struct buf why;
	enum sigma_file_status st;

	buf_init(&why, 1 << 16);
	st = add_text(b, name, text, len, fn, ctx, &why);
	buf_fini(&why);
	return st;
}

int sigma_builder_add_mappings(struct sigma_builder *b, const char *path,
			       struct buf *err)
{
	struct map_walk w = { b, err };
	size_t count = 0;
	int r = walk(path, 0, &count, map_file, &w);

	if (r == M_EIO && !err->len)
		buf_printf(err, "%s: cannot read: %s", path, strerror(errno));
	buf_cstr(err);
	return r;
}

int sigma_builder_set_placeholder(struct sigma_builder *b, const char *name,
				  const char *const *values, size_t n)
{
	struct sigma_placeholder *np, ph;

	memset(&ph, 0, sizeof(ph));
	ph.name = strdup(name);
	ph.values = calloc(n + 1, sizeof(*ph.values));
	if (!ph.name || !ph.values)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		ph.values[i] = strdup(values[i]);
		if (!ph.values[i])
			goto nomem;
		ph.n++;
	}
	np = realloc(b->ph, (b->n_ph + 1) * sizeof(*np));
	if (!np)
		goto nomem;
	b->ph = np;
	b->ph[b->n_ph++] = ph;
	return 0;
nomem:
	for (size_t i = 0; i < ph.n; i++)
		free(ph.values[i]);
	free(ph.values);
	free(ph.name);
	return M_ENOMEM;
}

/* ---- rules ---- */

void sigma_rule_free(struct sigma_rule *r)
{
	if (!r)
		return;
	free((char *)r->info.id);
	free((char *)r->info.name);
	free((char *)r->info.title);
	free((char *)r->info.file);
	free((char *)r->info.status);
	for (uint32_t i = 0; i < r->info.n_tags; i++)
		free((char *)r->info.tags[i]);
	free((void *)r->info.tags);
	free(r->product);
	free(r->category);
	free(r->service);
	free(r->nodes);
	free(r->kids);
	free(r->ident_root);
	free(r->is_must);
	sigma_cond_free(r->cond);
	free(r->filters);
	free(r);
}

static const char *const level_names[] = { "informational", "low", "medium",
					   "high", "critical" };

const char *sigma_level_name(enum sigma_level l)
{
	return (unsigned)l < 5 ? level_names[l] : "unknown";
}

static int parse_level(const char *v, enum sigma_level *out)
{
	for (int i = 0; i < 5; i++)
		if (v && strcasecmp(v, level_names[i]) == 0) {
			*out = (enum sigma_level)i;
			return 0;
		}
	return M_EINVAL;
}

/* One identifier's value into a node: a map is an AND of its items; a
 * list is an OR of its items (maps, or keywords); a scalar a keyword. */
static int ident_node(struct sigma_builder *b, struct sigma_rule_build *rb,
		      const struct conf_node *v, int depth, uint32_t *out,
		      struct buf *why)
{
	uint32_t kids[512];
	uint32_t nk = 0;
	int r = 0, kind = conf_node_kind(v);

	if (depth > SIGMA_MAX_DEPTH) {
		buf_printf(why, "%d:%d: detection nested too deep", conf_node_line(v),
			   conf_node_col(v));
		return M_ELIMIT;
	}
	if (kind == CONF_NODE_MAP) {
		for (const struct conf_node *k = conf_node_child(v); k && conf_node_next(k);
		     k = conf_node_next(conf_node_next(k))) {
			if (nk == 512) {
				buf_printf(why, "%d:%d: more than 512 fields in one selection",
					   conf_node_line(k), conf_node_col(k));
				return M_ELIMIT;
			}
			if (conf_node_kind(k) != CONF_NODE_SCALAR) {
				buf_printf(why, "%d:%d: a field name must be a scalar",
					   conf_node_line(k), conf_node_col(k));
				return M_EINVAL;
			}
			r = sigma_item_compile(b, rb, conf_node_value(k), conf_node_next(k),
					       &kids[nk], why);
			if (r < 0) {
				if (why->len && why->p[0] >= '0' && why->p[0] <= '9')
					return r;
				/* Prefix the position when the reason has none. */
				struct buf t;
				buf_init(&t, 0);
				buf_printf(&t, "%d:%d: %.*s", conf_node_line(k),
					   conf_node_col(k), (int)why->len, why->p ? why->p : "");
				buf_reset(why);
				if (t.p)
					buf_append(why, t.p, t.len);
				buf_cstr(why);
				buf_fini(&t);
				return r;
			}
			nk++;
		}
		if (nk == 0)
			return sigma_node_add(rb, SN_TRUE, 0, 0, out);
		if (nk == 1) {
			*out = kids[0];
			return 0;
		}
		return sigma_node_group(rb, SN_AND, kids, nk, out);
	}
	if (kind == CONF_NODE_SEQ) {
		int all_scalar = 1;

		for (const struct conf_node *it = conf_node_child(v); it; it = conf_node_next(it))
			if (conf_node_kind(it) != CONF_NODE_SCALAR)
				all_scalar = 0;
		if (all_scalar)
			return sigma_keywords_compile(b, rb, v, out, why);
		for (const struct conf_node *it = conf_node_child(v); it; it = conf_node_next(it)) {
			if (nk == 512) {
				buf_printf(why, "%d:%d: more than 512 alternatives",
					   conf_node_line(it), conf_node_col(it));
				return M_ELIMIT;
			}
			if (conf_node_kind(it) == CONF_NODE_SCALAR)
				r = sigma_keywords_compile(b, rb, it, &kids[nk], why);
			else
				r = ident_node(b, rb, it, depth + 1, &kids[nk], why);
			if (r < 0)
				return r;
			nk++;
		}
		if (nk == 0)
			return sigma_node_add(rb, SN_FALSE, 0, 0, out);
		if (nk == 1) {
			*out = kids[0];
			return 0;
		}
		return sigma_node_group(rb, SN_OR, kids, nk, out);
	}
	if (kind == CONF_NODE_SCALAR && !conf_node_is_null(v))
		return sigma_keywords_compile(b, rb, v, out, why);
	buf_printf(why, "%d:%d: an empty detection item", conf_node_line(v),
		   conf_node_col(v));
	return M_EINVAL;
}

/* The detection section (of a rule or of a filter) into identifiers and a
 * condition. */
static int compile_detection(struct sigma_builder *b, struct sigma_rule_build *rb,
			     const struct conf_node *det, struct buf *why)
{
	struct sigma_rule *r = rb->r;
	const char *names[SIGMA_COND_MAX_NAMES];
	uint32_t roots[SIGMA_COND_MAX_NAMES];
	uint32_t n = 0;
	const struct conf_node *cond = NULL;
	struct buf ctext;
	int rc = 0;

	if (conf_node_kind(det) != CONF_NODE_MAP) {
		buf_printf(why, "%d:%d: detection must be a mapping", conf_node_line(det),
			   conf_node_col(det));
		return M_EINVAL;
	}
	for (const struct conf_node *k = conf_node_child(det); k && conf_node_next(k);
	     k = conf_node_next(conf_node_next(k))) {
		const char *key = conf_node_value(k);

		if (!key)
			continue;
		if (strcmp(key, "condition") == 0) {
			cond = conf_node_next(k);
			continue;
		}
		if (strcmp(key, "timeframe") == 0 || strcmp(key, "rules") == 0)
			continue;
		if (n == SIGMA_COND_MAX_NAMES) {
			buf_printf(why, "%d:%d: more than %d detection identifiers",
				   conf_node_line(k), conf_node_col(k), SIGMA_COND_MAX_NAMES);
			return M_ELIMIT;
		}
		rc = ident_node(b, rb, conf_node_next(k), 0, &roots[n], why);
		if (rc < 0)
			return rc;
		names[n++] = key;
	}
	if (!cond) {
		buf_printf(why, "%d:%d: detection has no condition", conf_node_line(det),
			   conf_node_col(det));
		return M_EINVAL;
	}
	buf_init(&ctext, SIGMA_COND_MAX_TEXT);
	if (conf_node_kind(cond) == CONF_NODE_SEQ) {
		int first = 1;
		for (const struct conf_node *c = conf_node_child(cond); c; c = conf_node_next(c)) {
			if (conf_node_kind(c) != CONF_NODE_SCALAR)
				continue;
			buf_printf(&ctext, "%s(%s)", first ? "" : " or ", conf_node_value(c));
			first = 0;
		}
	} else if (conf_node_kind(cond) == CONF_NODE_SCALAR) {
		buf_puts(&ctext, conf_node_value(cond));
	}
	if (buf_cstr(&ctext) < 0 || ctext.len == 0) {
		buf_printf(why, "%d:%d: the condition must be text", conf_node_line(cond),
			   conf_node_col(cond));
		buf_fini(&ctext);
		return M_EINVAL;
	}
	{
		struct buf cerr;

		buf_init(&cerr, 4096);
		rc = sigma_cond_parse(ctext.p, ctext.len, names, n, &r->cond, &cerr);
		if (rc < 0)
			buf_printf(why, "%d:%d: condition: %s", conf_node_line(cond),
				   conf_node_col(cond), cerr.p ? cerr.p : "invalid");
		buf_fini(&cerr);
	}
	buf_fini(&ctext);
	if (rc < 0)
		return rc;
	r->ident_root = malloc(n ? n * sizeof(*r->ident_root) : 1);
	if (!r->ident_root)
		return M_ENOMEM;
	memcpy(r->ident_root, roots, n * sizeof(*roots));
	r->n_idents = n;
	return 0;
}

static int set_logsource(struct sigma_rule *r, const struct conf_node *root)
{
	const struct conf_node *ls = conf_map_get(root, "logsource");
	const char *p = ls ? scalar_of(ls, "product") : NULL;
	const char *c = ls ? scalar_of(ls, "category") : NULL;
	const char *s = ls ? scalar_of(ls, "service") : NULL;

	r->product = strdup(p ? p : "");
	r->category = strdup(c ? c : "");
	r->service = strdup(s ? s : "");
	return r->product && r->category && r->service ? 0 : M_ENOMEM;
}

static int set_meta(struct sigma_rule *r, const char *file,
		    const struct conf_node *root)
{
	const char *id = scalar_of(root, "id");
	const struct conf_node *tags = conf_map_get(root, "tags");
	const char *base = strrchr(file, '/');

	r->info.file = strdup(file);
	r->info.id = strdup(id ? id : base ? base + 1 : file);
	r->info.name = xstrdup(scalar_of(root, "name"));
	r->info.title = strdup(scalar_of(root, "title") ? scalar_of(root, "title") : "");
	r->info.status = xstrdup(scalar_of(root, "status"));
	r->info.level = SIGMA_LEVEL_MEDIUM;
	if (scalar_of(root, "level"))
		parse_level(scalar_of(root, "level"), &r->info.level);
	if (!r->info.file || !r->info.id || !r->info.title)
		return M_ENOMEM;
	if (conf_node_kind(tags) == CONF_NODE_SEQ) {
		uint32_t n = 0;
		const char **t;

		for (const struct conf_node *x = conf_node_child(tags); x; x = conf_node_next(x))
			n++;
		if (n > 256)
			n = 256;
		t = calloc(n + 1, sizeof(*t));
		if (!t)
			return M_ENOMEM;
		r->info.tags = t;
		for (const struct conf_node *x = conf_node_child(tags);
		     x && r->info.n_tags < n; x = conf_node_next(x)) {
			if (conf_node_kind(x) != CONF_NODE_SCALAR)
				continue;
			t[r->info.n_tags] = strdup(conf_node_value(x));
			if (!t[r->info.n_tags])
				return M_ENOMEM;
			r->info.n_tags++;
		}
	}
	return 0;
}

/* taxonomy: sigma (the default: field names mapped to the event's through
 * the mapping files) or ecs (the event's own names, mamori's events being
 * ECS). Another taxonomy would need its own mappings. */
static int set_taxonomy(struct sigma_rule *r, const struct conf_node *root,
			struct buf *why)
{
	const struct conf_node *n = conf_map_get(root, "taxonomy");
	const char *t = scalar_of(root, "taxonomy");

	if (!n)
		return 0;
	if (t && !strcasecmp(t, "sigma"))
		return 0;
	if (t && !strcasecmp(t, "ecs")) {
		r->ecs = 1;
		return 0;
	}
	buf_printf(why, "%d:%d: taxonomy %s (mamori reads sigma and ecs field names)",
		   conf_node_line(n), conf_node_col(n), t ? t : "(not a name)");
	return M_EUNSUPP;
}

static int push_rule(struct sigma_rule ***v, uint32_t *n, struct sigma_rule *r)
{
	struct sigma_rule **nv;

	if (*n >= 1000000)
		return M_ELIMIT;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return M_ENOMEM;
	*v = nv;
	nv[(*n)++] = r;
	return 0;
}

/* One YAML document: a rule, a correlation or a filter. */
static enum sigma_file_status add_doc(struct sigma_builder *b, const char *file,
				      const struct conf_node *root, struct buf *why)
{
	struct sigma_rule *r;
	struct sigma_rule_build rb;
	const struct conf_node *det, *corr, *filt;
	int rc;

	if (conf_node_kind(root) != CONF_NODE_MAP) {
		buf_printf(why, "%d:%d: a rule must be a mapping", conf_node_line(root),
			   conf_node_col(root));
		return SIGMA_ERROR;
	}
	if (!scalar_of(root, "title")) {
		buf_printf(why, "%d:%d: the rule has no title", conf_node_line(root),
			   conf_node_col(root));
		return SIGMA_ERROR;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	if (set_meta(r, file, root) < 0 || set_logsource(r, root) < 0)
		goto nomem;
	det = conf_map_get(root, "detection");
	corr = conf_map_get(root, "correlation");
	filt = conf_map_get(root, "filter");
	memset(&rb, 0, sizeof(rb));
	rb.r = r;
	rc = set_taxonomy(r, root, why);
	if (rc < 0)
		goto fail;
	if (corr) {
		rc = sigma_corr_parse(b, r, corr, why);
		if (rc < 0)
			goto fail;
		r->info.is_correlation = 1;
		if (push_rule(&b->rs->rules, &b->rs->n_rules, r) < 0)
			goto nomem;
		return SIGMA_LOADED;
	}
	if (filt && !det) {
		const struct conf_node *targets = conf_map_get(filt, "rules");
		struct buf tb;
		struct sigma_rule **nf;
		char **nt;
		uint8_t *na;
		int any;

		rc = compile_detection(b, &rb, filt, why);
		if (rc < 0)
			goto fail;
		buf_init(&tb, 1 << 20);
		any = conf_node_kind(targets) == CONF_NODE_SCALAR && conf_node_value(targets) &&
		      (!strcasecmp(conf_node_value(targets), "any") ||
		       !strcasecmp(conf_node_value(targets), "all"));
		if (any) {
			/* pySigma's `rules: any`: every rule of the logsource. */
		} else if (conf_node_kind(targets) == CONF_NODE_SEQ) {
			for (const struct conf_node *t = conf_node_child(targets); t;
			     t = conf_node_next(t))
				if (conf_node_kind(t) == CONF_NODE_SCALAR)
					buf_append(&tb, conf_node_value(t),
						   strlen(conf_node_value(t)) + 1);
		} else if (conf_node_kind(targets) == CONF_NODE_SCALAR) {
			buf_append(&tb, conf_node_value(targets),
				   strlen(conf_node_value(targets)) + 1);
		} else {
			buf_fini(&tb);
			buf_printf(why, "%d:%d: a filter needs `rules:`", conf_node_line(filt),
				   conf_node_col(filt));
			rc = M_EINVAL;
			goto fail;
		}
		buf_putc(&tb, '\0');
		nf = realloc(b->filters, (b->n_filters + 1) * sizeof(*nf));
		if (!nf) {
			buf_fini(&tb);
			goto nomem;
		}
		b->filters = nf;
		nt = realloc(b->filter_targets, (b->n_filters + 1) * sizeof(*nt));
		if (!nt) {
			buf_fini(&tb);
			goto nomem;
		}
		b->filter_targets = nt;
		na = realloc(b->filter_any, b->n_filters + 1);
		if (!na) {
			buf_fini(&tb);
			goto nomem;
		}
		b->filter_any = na;
		na[b->n_filters] = (uint8_t)any;
		b->filters[b->n_filters] = r;
		b->filter_targets[b->n_filters++] = tb.p;  /* owns tb's memory */
		return SIGMA_LOADED;
	}
	if (!det) {
		buf_printf(why, "%d:%d: the rule has no detection", conf_node_line(root),
			   conf_node_col(root));
		rc = M_EINVAL;
		goto fail;
	}
	rc = compile_detection(b, &rb, det, why);
	if (rc < 0)
		goto fail;
	if (push_rule(&b->rs->rules, &b->rs->n_rules, r) < 0)
		goto nomem;
	r->info.index = b->rs->n_rules - 1;
	return SIGMA_LOADED;
nomem:
	buf_reset(why);
	buf_printf(why, "out of memory");
	sigma_rule_free(r);
	return SIGMA_ERROR;
fail:
	sigma_rule_free(r);
	return rc == M_EUNSUPP ? SIGMA_UNSUPPORTED : SIGMA_ERROR;
}

static void count(struct sigma_builder *b, enum sigma_file_status st)
{
	if (st == SIGMA_LOADED)
		b->loaded++;
	else if (st == SIGMA_UNSUPPORTED)
		b->unsupported++;
	else
		b->errors++;
}

struct rule_walk {
	struct sigma_builder *b;
	sigma_report_fn fn;
	void *ctx;
};

static enum sigma_file_status add_text(struct sigma_builder *b, const char *name,
				       const char *text, size_t len,
				       sigma_report_fn fn, void *ctx,
				       struct buf *why)
{
	struct conf_doc doc;
	enum sigma_file_status worst = SIGMA_LOADED;

	buf_reset(why);
	if (conf_parse_multi(name, text, len, &doc, why) < 0) {
		/* conf errors read "file:line:col: msg"; keep "line:col: msg". */
		size_t skip = strlen(name) + 1;
		if (why->len > skip && strncmp(why->p, name, skip - 1) == 0) {
			memmove(why->p, why->p + skip, why->len - skip + 1);
			why->len -= skip;
		}
		count(b, SIGMA_ERROR);
		if (fn)
			fn(ctx, name, SIGMA_ERROR, why->p ? why->p : "YAML error");
		return SIGMA_ERROR;
	}
	if (!doc.root) {
		buf_printf(why, "0:0: empty file");
		count(b, SIGMA_ERROR);
		if (fn)
			fn(ctx, name, SIGMA_ERROR, why->p);
		conf_doc_fini(&doc);
		return SIGMA_ERROR;
	}
	for (const struct conf_node *root = doc.root; root; root = conf_node_next(root)) {
		enum sigma_file_status st;

		buf_reset(why);
		st = add_doc(b, name, root, why);
		buf_cstr(why);
		count(b, st);
		if (fn)
			fn(ctx, name, st, st == SIGMA_LOADED ? "" : why->p ? why->p : "");
		if (st > worst)
			worst = st;
	}
	conf_doc_fini(&doc);
	return worst;
}

static int rule_file(void *vctx, const char *path)
{
	struct rule_walk *w = vctx;
	struct buf why;
	char *text;
	size_t len;
	int r;

	r = read_file(path, &text, &len);
	if (r < 0) {
		count(w->b, SIGMA_ERROR);
		if (w->fn)
			w->fn(w->ctx, path, SIGMA_ERROR,
			      r == M_ELIMIT ? "0:0: file larger than 4 MiB" :
			      "0:0: cannot read the file");
		return r == M_ENOMEM ? r : 0;
	}
	buf_init(&why, 1 << 16);
	add_text(w->b, path, text, len, w->fn, w->ctx, &why);
	buf_fini(&why);
	free(text);
	return 0;
}

int sigma_builder_add_path(struct sigma_builder *b, const char *path,
			   sigma_report_fn fn, void *ctx)
{
	struct rule_walk w = { b, fn, ctx };
	size_t n = 0;

	return walk(path, 0, &n, rule_file, &w);
}

enum sigma_file_status sigma_builder_add_text(struct sigma_builder *b,
					      const char *name,
					      const char *text, size_t len,
					      struct buf *why)
{
	return add_text(b, name, text, len, NULL, NULL, why);
}

void sigma_builder_counts(const struct sigma_builder *b, size_t *loaded,
			  size_t *unsupported, size_t *errors)
{
	*loaded = b->loaded;
	*unsupported = b->unsupported;
	*errors = b->errors;
}

struct sigma_builder *sigma_builder_new(void)
{
	struct sigma_builder *b = calloc(1, sizeof(*b));
	uint32_t kw;

	if (!b)
		return NULL;
	b->rs = calloc(1, sizeof(*b->rs));
	if (!b->rs) {
		free(b);
		return NULL;
	}
	atomic_init(&b->rs->refs, 1);
	pthread_mutex_init(&b->rs->pool_lock, NULL);
	pthread_mutex_init(&b->rs->merge_lock, NULL);
	pthread_cond_init(&b->rs->merge_cond, NULL);
	/* Field 0 is the keyword pseudo-field. */
	if (sigma_field_intern(b, "*keywords*", &kw) < 0) {
		sigma_builder_free(b);
		return NULL;
	}
	return b;
}

void sigma_ruleset_free_all(struct sigma_ruleset *rs);

static void builder_free_parts(struct sigma_builder *b)
{
	for (size_t i = 0; i < b->n_maps; i++) {
		struct sigma_mapping *m = &b->maps[i];
		for (size_t k = 0; k < m->n; k++) {
			free(m->from[k]);
			free(m->to[k]);
		}
		free(m->from);
		free(m->to);
		free(m->product);
		free(m->category);
		free(m->service);
		free(m->def);
		free(m->file);
	}
	free(b->maps);
	for (size_t i = 0; i < b->n_ph; i++) {
		for (size_t k = 0; k < b->ph[i].n; k++)
			free(b->ph[i].values[k]);
		free(b->ph[i].values);
		free(b->ph[i].name);
	}
	free(b->ph);
	for (size_t i = 0; b->rs && i < b->rs->n_preds; i++)
		free(b->pred_keys[i]);
	free(b->pred_keys);
	free(b->pred_klen);
	free(b->pred_hash);
	free(b->field_hash);
	for (size_t i = 0; i < b->n_filters; i++)
		free(b->filter_targets[i]);
	free(b->filter_targets);
	free(b->filter_any);
	b->filter_any = NULL;
}

void sigma_builder_free(struct sigma_builder *b)
{
	if (!b)
		return;
	builder_free_parts(b);
	for (size_t i = 0; i < b->n_filters; i++)
		sigma_rule_free(b->filters[i]);
	free(b->filters);
	if (b->rs)
		sigma_ruleset_free_all(b->rs);
	free(b);
}

/* Does the filter's logsource contain the rule's: each of product,
 * category and service the filter gives, the rule gives too, equal? */
static int ls_contains(const struct sigma_rule *f, const struct sigma_rule *r)
{
	return (!*f->product || !strcasecmp(f->product, r->product)) &&
	       (!*f->category || !strcasecmp(f->category, r->category)) &&
	       (!*f->service || !strcasecmp(f->service, r->service));
}

static int names(const struct sigma_rule *r, const char *targets)
{
	for (const char *t = targets; *t; t += strlen(t) + 1)
		if (strcmp(r->info.id, t) == 0 || (r->info.name && strcmp(r->info.name, t) == 0))
			return 1;
	return 0;
}

/* Attaches each filter to the rules it names (by id or name), or to every
 * rule for `rules: any`, among the rules of its logsource (as pySigma
 * does: a filter for process_creation never touches a registry rule).
 * A named rule that is not loaded is no error: the filter has nothing to
 * apply to. */
static int attach_filters(struct sigma_builder *b)
{
	struct sigma_ruleset *rs = b->rs;

	for (size_t f = 0; f < b->n_filters; f++) {
		for (uint32_t i = 0; i < rs->n_rules; i++) {
			struct sigma_rule *r = rs->rules[i];
			struct sigma_rule **nf;

			if (r->info.is_correlation || !ls_contains(b->filters[f], r))
				continue;
			if (!b->filter_any[f] && !names(r, b->filter_targets[f]))
				continue;
			nf = realloc(r->filters, (r->n_filters + 1) * sizeof(*nf));
			if (!nf)
				return M_ENOMEM;
			r->filters = nf;
			nf[r->n_filters++] = b->filters[f];
		}
	}
	return 0;
}

int sigma_builder_set_hs_cache(struct sigma_builder *b, const char *dir)
{
	free(b->rs->hs_cache_dir);
	b->rs->hs_cache_dir = NULL;
	if (!dir || !dir[0])
		return 0;
	b->rs->hs_cache_dir = strdup(dir);
	return b->rs->hs_cache_dir ? 0 : M_ENOMEM;
}

struct sigma_ruleset *sigma_builder_finish(struct sigma_builder *b,
					   int force_pcre, struct buf *err)
{
	struct sigma_ruleset *rs = b->rs;
	uint32_t n_plain;
	int r;

	rs->force_pcre = force_pcre;
	r = attach_filters(b);
	for (size_t i = 0; i < b->n_filters; i++)
		free(b->filter_targets[i]);
	free(b->filter_targets);
	b->filter_targets = NULL;
	/* The set owns the filters from here on. */
	n_plain = rs->n_rules;
	rs->filters = b->filters;
	rs->n_filters = (uint32_t)b->n_filters;
	for (uint32_t i = 0; i < rs->n_filters; i++)
		rs->filters[i]->info.index = UINT32_MAX;
	b->filters = NULL;
	b->n_filters = 0;
	for (uint32_t i = 0; i < n_plain; i++)
		rs->rules[i]->info.index = i;
	if (r == 0)
		r = sigma_corr_resolve(b, err);
	if (r == 0)
		r = sigma_compile_buckets(rs, err);
	if (r < 0) {
		if (!err->len)
			buf_printf(err, "compiling the rule set: %s", err_str(r));
		buf_cstr(err);
		sigma_builder_free(b);
		return NULL;
	}
	builder_free_parts(b);
	b->rs = NULL;
	free(b);
	return rs;
}
