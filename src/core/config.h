/*
 * Configuration: a YAML file parsed with libyaml into a small tree that keeps
 * each node's line and column; every module declares its options once as a
 * keyword table (name, type, offset, bounds, default, reloadable) and the
 * generic setters below fill its config struct. Errors read
 * "file:line:col: what was expected".
 */
#ifndef MAMORI_CONFIG_H
#define MAMORI_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum conf_type {
	CONF_STR,       /* char * (heap, owned by the config struct) */
	CONF_INT,       /* int64_t, bounded by min/max */
	CONF_BOOL,      /* int: true/false/yes/no/on/off */
	CONF_ADDR,      /* char *: "host:port", "[v6]:port", or "" = disabled */
	CONF_STRLIST,   /* struct conf_list */
	CONF_SIZE,      /* int64_t bytes: 512, 64k, 10M, 2G */
	CONF_DURATION,  /* int64_t seconds: 30, 30s, 15m, 12h, 7d */
};

struct conf_list {
	char **v;
	size_t n;
};

struct conf_keyword {
	const char *name;
	enum conf_type type;
	size_t offset;         /* in the module's config struct */
	int64_t min, max;      /* CONF_INT/SIZE/DURATION bounds */
	const char *def;       /* default, as it would be written in YAML */
	int reloadable;        /* may change on SIGHUP */
	const char *help;
};

#define CONF_END { NULL, 0, 0, 0, 0, NULL, 0, NULL }

struct conf_node;   /* parsed YAML, private to config.c */

struct conf_doc {
	char *file;                /* name used in error messages */
	struct conf_node *root;    /* NULL for an empty document */
};

/* Parses YAML text; on error returns M_EPARSE/M_EINVAL with a
 * "file:line:col: message" in err. Owner of *doc: the caller. */
int conf_parse(const char *file, const char *text, size_t len,
	       struct conf_doc *doc, struct buf *err);
/* As conf_parse, but accepts several documents ("---"): doc->root is the
 * first document's root and the others follow through conf_node_next(). */
int conf_parse_multi(const char *file, const char *text, size_t len,
		     struct conf_doc *doc, struct buf *err);
int conf_load_file(const char *path, struct conf_doc *doc, struct buf *err);
void conf_doc_fini(struct conf_doc *doc);

/* Fills dst from defaults, then from the mapping at section (a top-level key,
 * or NULL for top-level scalars listed in kw). Unknown keys in the section are
 * errors. dst must be zeroed by the caller before the first apply. */
int conf_apply(const struct conf_doc *doc, const char *section,
	       const struct conf_keyword *kw, void *dst, struct buf *err);
/* As conf_apply, for a mapping reached by walking the tree (an item of a
 * list of maps such as notify.channels); what names it in errors; keys
 * listed in skip (NULL-terminated, may be NULL) are left to the caller. */
int conf_apply_map(const struct conf_doc *doc, const struct conf_node *map,
		   const char *what, const struct conf_keyword *kw,
		   const char *const *skip, void *dst, struct buf *err);
/* Reports top-level keys that no section or keyword claims. */
int conf_check_sections(const struct conf_doc *doc, const char *const *known,
			struct buf *err);
/* Frees the heap strings and lists that conf_apply() put in dst. */
void conf_free(const struct conf_keyword *kw, void *dst);

/* Appends to out (comma-separated, prefixed with section.) the names of the
 * settings in kw that are not reloadable and differ between a and b: what a
 * reload cannot apply without a restart. */
int conf_changed_fixed(const char *section, const struct conf_keyword *kw,
		       const void *a, const void *b, struct buf *out);

/* Appends a copy of v to a list (at most 4096 entries). */
int conf_list_push(struct conf_list *l, const char *v);

/* Splits "host:port" / "[v6]:port" into host (hostsz) and port. */
int conf_split_addr(const char *addr, char *host, size_t hostsz, int *port);

/* Writes the keyword table as a documented YAML section (for --help and docs). */
int conf_describe(const char *section, const struct conf_keyword *kw,
		  struct buf *out);

/* Read-only walk of a parsed tree, for inputs that are not settings (Sigma
 * rules, field mappings). A map's children alternate key, value; a
 * sequence's children are its items; conf_node_next() steps through them. */
enum { CONF_NODE_SCALAR, CONF_NODE_MAP, CONF_NODE_SEQ };
int conf_node_kind(const struct conf_node *n);          /* -1 for NULL */
const char *conf_node_value(const struct conf_node *n); /* scalars only */
int conf_node_is_null(const struct conf_node *n);       /* ~, null, empty, NULL */
int conf_node_quoted(const struct conf_node *n);
int conf_node_line(const struct conf_node *n);
int conf_node_col(const struct conf_node *n);
const struct conf_node *conf_node_child(const struct conf_node *n);
const struct conf_node *conf_node_next(const struct conf_node *n);
const struct conf_node *conf_map_get(const struct conf_node *map, const char *key);

#endif
