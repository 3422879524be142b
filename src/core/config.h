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
int conf_load_file(const char *path, struct conf_doc *doc, struct buf *err);
void conf_doc_fini(struct conf_doc *doc);

/* Fills dst from defaults, then from the mapping at section (a top-level key,
 * or NULL for top-level scalars listed in kw). Unknown keys in the section are
 * errors. dst must be zeroed by the caller before the first apply. */
int conf_apply(const struct conf_doc *doc, const char *section,
	       const struct conf_keyword *kw, void *dst, struct buf *err);
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

#endif
