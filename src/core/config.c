/*
 * Configuration: libyaml events are built into a small tree whose nodes keep
 * their line and column, then each module's keyword table is applied to its
 * section by the generic setters below. Every error names file:line:col.
 * Anchors and aliases are refused: a configuration has no need for them and
 * they are the usual way to blow up a YAML parser's memory.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/config.h"
#include "core/err.h"

#define CONF_MAX_DEPTH 32
#define CONF_MAX_NODES 100000
#define CONF_MAX_FILE (16 << 20)

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct conf_node {
	enum node_kind kind;
	int line, col;
	char *value;              /* scalar */
	int quoted;               /* scalar was quoted: never a null */
	struct conf_node *child;  /* map: key, value, key, value...; seq: items */
	struct conf_node *next;
};

struct build {
	const char *file;
	struct buf *err;
	size_t nodes;
};

static void node_free(struct conf_node *n)
{
	while (n) {
		struct conf_node *next = n->next;
		node_free(n->child);
		free(n->value);
		free(n);
		n = next;
	}
}

static int errf(struct buf *err, const char *file, int line, int col,
		const char *fmt, const char *arg)
{
	if (err) {
		buf_printf(err, "%s:%d:%d: ", file, line, col);
		buf_printf(err, fmt, arg ? arg : "");
		buf_cstr(err);
	}
	return M_EINVAL;
}

static struct conf_node *node_new(struct build *b, enum node_kind k,
				  const yaml_mark_t *m)
{
	struct conf_node *n;

	if (++b->nodes > CONF_MAX_NODES)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = k;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

/* Builds the node whose start event is ev (already taken from the parser). */
static int build_node(struct build *b, yaml_parser_t *ps, yaml_event_t *ev,
		      int depth, struct conf_node **out)
{
	struct conf_node *n = NULL, **tail;
	yaml_event_t sub;
	int r = M_OK;

	*out = NULL;
	if (depth > CONF_MAX_DEPTH)
		return errf(b->err, b->file, (int)ev->start_mark.line + 1,
			    (int)ev->start_mark.column + 1, "nesting deeper than %s levels", "32");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return errf(b->err, b->file, (int)ev->start_mark.line + 1,
			    (int)ev->start_mark.column + 1, "aliases are not supported%s", "");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return errf(b->err, b->file, (int)ev->start_mark.line + 1,
				    (int)ev->start_mark.column + 1, "anchors are not supported%s", "");
		n = node_new(b, NODE_SCALAR, &ev->start_mark);
		if (!n)
			return M_ENOMEM;
		n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if (!n->value) {
			free(n);
			return M_ENOMEM;
		}
		*out = n;
		return M_OK;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
		if ((is_map && ev->data.mapping_start.anchor) ||
		    (!is_map && ev->data.sequence_start.anchor))
			return errf(b->err, b->file, (int)ev->start_mark.line + 1,
				    (int)ev->start_mark.column + 1, "anchors are not supported%s", "");
		n = node_new(b, is_map ? NODE_MAP : NODE_SEQ, &ev->start_mark);
		if (!n)
			return M_ENOMEM;
		tail = &n->child;
		for (;;) {
			struct conf_node *c;
			if (!yaml_parser_parse(ps, &sub)) {
				r = errf(b->err, b->file, (int)ps->problem_mark.line + 1,
					 (int)ps->problem_mark.column + 1, "%s",
					 ps->problem ? ps->problem : "YAML syntax error");
				goto fail;
			}
			if (sub.type == end) {
				yaml_event_delete(&sub);
				break;
			}
			r = build_node(b, ps, &sub, depth + 1, &c);
			yaml_event_delete(&sub);
			if (r < 0)
				goto fail;
			*tail = c;
			tail = &c->next;
		}
		*out = n;
		return M_OK;
	}
	default:
		return errf(b->err, b->file, (int)ev->start_mark.line + 1,
			    (int)ev->start_mark.column + 1, "unexpected YAML event%s", "");
	}
fail:
	node_free(n);
	return r;
}

/* Parses one YAML stream; with multi, every document's root mapping is kept,
 * chained through the roots' next pointers (Sigma rule files hold several). */
static int parse_stream(const char *file, const char *text, size_t len,
			int multi, struct conf_doc *doc, struct buf *err)
{
	yaml_parser_t ps;
	yaml_event_t ev;
	struct build b = { file, err, 0 };
	int r = M_OK, docs = 0;

	memset(doc, 0, sizeof(*doc));
	doc->file = strdup(file);
	if (!doc->file)
		return M_ENOMEM;
	if (!yaml_parser_initialize(&ps))
		return M_ENOMEM;
	yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_parse(&ps, &ev)) {
			r = errf(err, file, (int)ps.problem_mark.line + 1,
				 (int)ps.problem_mark.column + 1, "%s",
				 ps.problem ? ps.problem : "YAML syntax error");
			if (ps.context) {
				buf_printf(err, " %s", ps.context);
				buf_cstr(err);
			}
			goto out;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1 && !multi) {
			r = errf(err, file, (int)ev.start_mark.line + 1,
				 (int)ev.start_mark.column + 1, "only one YAML document is allowed%s", "");
			yaml_event_delete(&ev);
			goto out;
		}
		if (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
		    ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_ALIAS_EVENT) {
			struct conf_node *root;
			r = build_node(&b, &ps, &ev, 0, &root);
			yaml_event_delete(&ev);
			if (r < 0)
				goto out;
			if (root->kind == NODE_SCALAR && !root->quoted &&
			    (root->value[0] == '\0' || strcmp(root->value, "~") == 0 ||
			     strcmp(root->value, "null") == 0)) {
				node_free(root);
				continue;
			}
			if (root->kind != NODE_MAP) {
				r = errf(err, file, root->line, root->col,
					 "expected a mapping of settings at the top level%s", "");
				node_free(root);
				goto out;
			}
			if (!doc->root) {
				doc->root = root;
			} else {
				struct conf_node *t = doc->root;
				while (t->next)
					t = t->next;
				t->next = root;
			}
			continue;
		}
		yaml_event_delete(&ev);
	}
out:
	yaml_parser_delete(&ps);
	if (r < 0)
		conf_doc_fini(doc);
	return r;
}

int conf_parse(const char *file, const char *text, size_t len,
	       struct conf_doc *doc, struct buf *err)
{
	return parse_stream(file, text, len, 0, doc, err);
}

int conf_parse_multi(const char *file, const char *text, size_t len,
		     struct conf_doc *doc, struct buf *err)
{
	return parse_stream(file, text, len, 1, doc, err);
}

int conf_load_file(const char *path, struct conf_doc *doc, struct buf *err)
{
	FILE *f;
	struct stat st;
	char *text = NULL;
	size_t n;
	int r;

	memset(doc, 0, sizeof(*doc));
	f = fopen(path, "rb");
	if (!f) {
		buf_printf(err, "%s:0:0: cannot open: %s", path, strerror(errno));
		buf_cstr(err);
		return M_EIO;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > CONF_MAX_FILE) {
		buf_printf(err, "%s:0:0: not a readable file of at most 16 MiB", path);
		buf_cstr(err);
		fclose(f);
		return M_EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		fclose(f);
		return M_ENOMEM;
	}
	n = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	text[n] = '\0';
	r = conf_parse(path, text, n, doc, err);
	free(text);
	return r;
}

void conf_doc_fini(struct conf_doc *doc)
{
	node_free(doc->root);
	free(doc->file);
	doc->root = NULL;
	doc->file = NULL;
}

static struct conf_node *map_get(const struct conf_node *map, const char *key)
{
	if (!map || map->kind != NODE_MAP)
		return NULL;
	for (struct conf_node *k = map->child; k && k->next; k = k->next->next)
		if (k->kind == NODE_SCALAR && strcmp(k->value, key) == 0)
			return k->next;
	return NULL;
}

/* Parses an integer with an optional unit suffix from units (pairs of
 * suffix and multiplier). */
struct unit {
	const char *suffix;
	int64_t mult;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "b", 1 }, { "k", 1024 }, { "kb", 1024 }, { "kib", 1024 },
	{ "m", 1 << 20 }, { "mb", 1 << 20 }, { "mib", 1 << 20 },
	{ "g", (int64_t)1 << 30 }, { "gb", (int64_t)1 << 30 }, { "gib", (int64_t)1 << 30 },
	{ "t", (int64_t)1 << 40 }, { "tb", (int64_t)1 << 40 }, { NULL, 0 }
};

static const struct unit duration_units[] = {
	{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
	{ "w", 604800 }, { NULL, 0 }
};

static const struct unit no_units[] = { { "", 1 }, { NULL, 0 } };

static int parse_int_unit(const char *s, const struct unit *units, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE)
		return M_EINVAL;
	while (*end == ' ')
		end++;
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcasecmp(end, u->suffix) == 0) {
			if (v != 0 && (v > INT64_MAX / u->mult || v < INT64_MIN / u->mult))
				return M_EINVAL;
			*out = (int64_t)v * u->mult;
			return M_OK;
		}
	}
	return M_EINVAL;
}

int conf_split_addr(const char *addr, char *host, size_t hostsz, int *port)
{
	const char *colon, *hs, *he;
	int64_t p;

	if (addr[0] == '[') {
		he = strchr(addr, ']');
		if (!he || he[1] != ':')
			return M_EINVAL;
		hs = addr + 1;
		colon = he + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return M_EINVAL;
		hs = addr;
		he = colon;
	}
	if ((size_t)(he - hs) >= hostsz || he == hs)
		return M_EINVAL;
	if (parse_int_unit(colon + 1, no_units, &p) < 0 || p < 0 || p > 65535)
		return M_EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port = (int)p;
	return M_OK;
}

/* errf about setting k of section what, named by its whole path
 * (ddos.groups[0].delay; the key alone when what is NULL). */
static int key_errf(struct buf *err, const char *file, int line, int col, const char *fmt,
		    const char *what, const struct conf_keyword *k)
{
	char path[192];

	snprintf(path, sizeof(path), "%s%s%s", what ? what : "", what && what[0] ? "." : "",
		 k->name);
	return errf(err, file, line, col, fmt, path);
}

static int set_scalar(const struct conf_keyword *k, void *dst, const char *v,
		      const char *file, int line, int col, const char *what, struct buf *err)
{
	char *field = (char *)dst + k->offset;
	int64_t iv;
	const struct unit *units;

	switch (k->type) {
	case CONF_STR:
	case CONF_ADDR: {
		if (k->type == CONF_ADDR && v[0]) {
			char host[256];
			int port;
			if (conf_split_addr(v, host, sizeof(host), &port) < 0)
				return key_errf(err, file, line, col,
					    "expected host:port (e.g. 127.0.0.1:5514) or \"\" for %s", what, k);
		}
		char *s = strdup(v);
		if (!s)
			return M_ENOMEM;
		free(*(char **)field);
		*(char **)field = s;
		return M_OK;
	}
	case CONF_BOOL:
		if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
			*(int *)field = 1;
		else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
			*(int *)field = 0;
		else
			return key_errf(err, file, line, col, "expected true or false for %s", what, k);
		return M_OK;
	case CONF_INT:
	case CONF_SIZE:
	case CONF_DURATION:
		units = k->type == CONF_SIZE ? size_units :
			k->type == CONF_DURATION ? duration_units : no_units;
		if (parse_int_unit(v, units, &iv) < 0)
			return key_errf(err, file, line, col,
				    k->type == CONF_SIZE ? "expected a size (e.g. 64k, 10M, 2G) for %s" :
				    k->type == CONF_DURATION ? "expected a duration (e.g. 30s, 15m, 7d) for %s" :
				    "expected an integer for %s", what, k);
		if (iv < k->min || iv > k->max) {
			key_errf(err, file, line, col, "%s out of range", what, k);
			buf_printf(err, " (%lld..%lld)", (long long)k->min, (long long)k->max);
			buf_cstr(err);
			return M_EINVAL;
		}
		*(int64_t *)field = iv;
		return M_OK;
	case CONF_STRLIST:
		break;
	}
	return key_errf(err, file, line, col, "expected a list for %s", what, k);
}

static void list_clear(struct conf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int conf_list_push(struct conf_list *l, const char *v)
{
	char **nv;
	char *s;

	if (l->n >= 4096)
		return M_ELIMIT;
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return M_ENOMEM;
	l->v = nv;
	s = strdup(v);
	if (!s)
		return M_ENOMEM;
	l->v[l->n++] = s;
	return M_OK;
}

static int set_node(const struct conf_keyword *k, void *dst, const struct conf_node *n,
		    const char *file, const char *what, struct buf *err)
{

	if (k->type == CONF_STRLIST) {
		struct conf_list *l = (struct conf_list *)((char *)dst + k->offset);
		int r;
		list_clear(l);
		if (n->kind == NODE_SCALAR) {
			/* A single value, or an empty one for an empty list. */
			if (n->value[0] == '\0' && !n->quoted)
				return M_OK;
			return conf_list_push(l, n->value);
		}
		if (n->kind != NODE_SEQ)
			return key_errf(err, file, n->line, n->col, "expected a list of strings for %s", what, k);
		for (struct conf_node *c = n->child; c; c = c->next) {
			if (c->kind != NODE_SCALAR)
				return key_errf(err, file, c->line, c->col, "expected a string in %s", what, k);
			if ((r = conf_list_push(l, c->value)) < 0)
				return r;
		}
		return M_OK;
	}
	if (n->kind != NODE_SCALAR)
		return key_errf(err, file, n->line, n->col, "expected a single value for %s", what, k);
	return set_scalar(k, dst, n->value, file, n->line, n->col, what, err);
}

/* Sets dst from the keys of one mapping (sec; NULL or an empty value sets
 * nothing); keys listed in skip are left to the caller, any other key kw
 * does not name is an error naming what. */
static int apply_keys(const char *file, const struct conf_node *sec, const char *what,
		      const struct conf_keyword *kw, const char *const *skip,
		      void *dst, struct buf *err)
{
	int r;

	if (!sec)
		return M_OK;
	if (sec->kind == NODE_SCALAR && sec->value[0] == '\0' && !sec->quoted)
		return M_OK;
	if (sec->kind != NODE_MAP)
		return errf(err, file, sec->line, sec->col, "expected a mapping for section %s", what);
	for (struct conf_node *key = sec->child; key && key->next; key = key->next->next) {
		const struct conf_keyword *k;
		int skipped = 0;
		for (const char *const *s = skip; s && *s && key->kind == NODE_SCALAR; s++)
			if (strcmp(*s, key->value) == 0)
				skipped = 1;
		if (skipped)
			continue;
		for (k = kw; k->name; k++)
			if (key->kind == NODE_SCALAR && strcmp(k->name, key->value) == 0)
				break;
		if (!k->name) {
			errf(err, file, key->line, key->col, "unknown setting '%s'",
			     key->kind == NODE_SCALAR ? key->value : "?");
			buf_printf(err, " in section %s", what);
			buf_cstr(err);
			return M_EINVAL;
		}
		if ((r = set_node(k, dst, key->next, file, what, err)) < 0)
			return r;
	}
	return M_OK;
}

/* Defaults of kw into dst; the first step of every apply. */
static int apply_defaults(const struct conf_keyword *kw, void *dst, struct buf *err)
{
	int r;

	for (const struct conf_keyword *k = kw; k->name; k++) {
		if (k->type == CONF_STRLIST) {
			struct conf_list *l = (struct conf_list *)((char *)dst + k->offset);
			list_clear(l);
			if (k->def && k->def[0] && (r = conf_list_push(l, k->def)) < 0)
				return r;
			continue;
		}
		if ((r = set_scalar(k, dst, k->def ? k->def : "", "(defaults)", 0, 0, NULL, err)) < 0)
			return r;
	}
	return M_OK;
}

int conf_apply_map(const struct conf_doc *doc, const struct conf_node *map,
		   const char *what, const struct conf_keyword *kw,
		   const char *const *skip, void *dst, struct buf *err)
{
	const char *file = doc && doc->file ? doc->file : "(defaults)";
	int r;

	if ((r = apply_defaults(kw, dst, err)) < 0)
		return r;
	return apply_keys(file, map, what, kw, skip, dst, err);
}

int conf_apply(const struct conf_doc *doc, const char *section,
	       const struct conf_keyword *kw, void *dst, struct buf *err)
{
	const struct conf_node *sec = NULL;
	const char *file = doc && doc->file ? doc->file : "(defaults)";
	int r;

	/* Defaults first. */
	if ((r = apply_defaults(kw, dst, err)) < 0)
		return r;
	if (!doc || !doc->root)
		return M_OK;
	if (section) {
		sec = map_get(doc->root, section);
		return apply_keys(file, sec, section, kw, NULL, dst, err);
	}
	for (const struct conf_keyword *k = kw; k->name; k++) {
		const struct conf_node *n = map_get(doc->root, k->name);
		if (n && (r = set_node(k, dst, n, file, NULL, err)) < 0)
			return r;
	}
	return M_OK;
}

int conf_check_sections(const struct conf_doc *doc, const char *const *known,
			struct buf *err)
{
	if (!doc || !doc->root)
		return M_OK;
	for (struct conf_node *key = doc->root->child; key && key->next; key = key->next->next) {
		int ok = 0;
		for (const char *const *k = known; *k; k++)
			if (key->kind == NODE_SCALAR && strcmp(*k, key->value) == 0)
				ok = 1;
		if (!ok)
			return errf(err, doc->file, key->line, key->col, "unknown setting '%s'",
				    key->kind == NODE_SCALAR ? key->value : "?");
	}
	return M_OK;
}

void conf_free(const struct conf_keyword *kw, void *dst)
{
	for (const struct conf_keyword *k = kw; k->name; k++) {
		char *field = (char *)dst + k->offset;
		if (k->type == CONF_STR || k->type == CONF_ADDR) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (k->type == CONF_STRLIST) {
			list_clear((struct conf_list *)field);
		}
	}
}

int conf_describe(const char *section, const struct conf_keyword *kw,
		  struct buf *out)
{
	const char *ind = section ? "  " : "";
	int r = 0;

	if (section)
		r = buf_printf(out, "%s:\n", section);
	for (const struct conf_keyword *k = kw; k->name && r == 0; k++) {
		r = buf_printf(out, "%s# %s%s\n%s%s: %s%s%s\n", ind, k->help ? k->help : "",
			       k->reloadable ? " (reloadable)" : "", ind, k->name,
			       (k->type == CONF_STR || k->type == CONF_ADDR) ? "\"" : "",
			       k->def ? k->def : "",
			       (k->type == CONF_STR || k->type == CONF_ADDR) ? "\"" : "");
	}
	return r;
}

static int str_differs(const char *x, const char *y)
{
	return strcmp(x ? x : "", y ? y : "") != 0;
}

int conf_changed_fixed(const char *section, const struct conf_keyword *kw,
		       const void *a, const void *b, struct buf *out)
{
	for (const struct conf_keyword *k = kw; k->name; k++) {
		const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
		int differs = 0;

		if (k->reloadable)
			continue;
		switch (k->type) {
		case CONF_STR:
		case CONF_ADDR:
			differs = str_differs(*(char *const *)fa, *(char *const *)fb);
			break;
		case CONF_BOOL:
			differs = *(const int *)fa != *(const int *)fb;
			break;
		case CONF_INT:
		case CONF_SIZE:
		case CONF_DURATION:
			differs = *(const int64_t *)fa != *(const int64_t *)fb;
			break;
		case CONF_STRLIST: {
			const struct conf_list *la = (const void *)fa, *lb = (const void *)fb;
			differs = la->n != lb->n;
			for (size_t i = 0; !differs && i < la->n; i++)
				differs = str_differs(la->v[i], lb->v[i]);
			break;
		}
		}
		if (differs) {
			int r = buf_printf(out, "%s%s%s%s", out->len ? "," : "",
					   section ? section : "", section ? "." : "", k->name);
			if (r < 0)
				return r;
		}
	}
	return M_OK;
}

/* Read-only access to the tree for modules whose input is not settings
 * (Sigma rules, mapping files): kind, text and position of each node. */
int conf_node_kind(const struct conf_node *n)
{
	if (!n)
		return -1;
	return n->kind == NODE_SCALAR ? CONF_NODE_SCALAR :
	       n->kind == NODE_MAP ? CONF_NODE_MAP : CONF_NODE_SEQ;
}

const char *conf_node_value(const struct conf_node *n)
{
	return n && n->kind == NODE_SCALAR ? n->value : NULL;
}

int conf_node_is_null(const struct conf_node *n)
{
	return !n || (n->kind == NODE_SCALAR && !n->quoted &&
		      (n->value[0] == '\0' || strcmp(n->value, "~") == 0 ||
		       strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
		       strcmp(n->value, "NULL") == 0));
}

int conf_node_quoted(const struct conf_node *n)
{
	return n ? n->quoted : 0;
}

int conf_node_line(const struct conf_node *n)
{
	return n ? n->line : 0;
}

int conf_node_col(const struct conf_node *n)
{
	return n ? n->col : 0;
}

const struct conf_node *conf_node_child(const struct conf_node *n)
{
	return n && n->kind != NODE_SCALAR ? n->child : NULL;
}

const struct conf_node *conf_node_next(const struct conf_node *n)
{
	return n ? n->next : NULL;
}

const struct conf_node *conf_map_get(const struct conf_node *map, const char *key)
{
	return map_get(map, key);
}
