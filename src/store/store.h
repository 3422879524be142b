/*
 * The event store interface. A back-end is a small table of functions chosen
 * by name (OpenSMTPD's habit): SQLite now, ClickHouse later. Writes are
 * idempotent by event id, so replaying the same batch twice stores it once.
 * One writer thread calls write_batch(); search() may be called from any
 * thread (each back-end brings its own read connections).
 */
#ifndef MAMORI_STORE_H
#define MAMORI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/event.h"

struct store_config {
	const char *backend;        /* "sqlite" */
	const char *path;           /* data directory */
	int64_t retention_seconds;  /* 0 = keep forever */
	int64_t retention_bytes;    /* 0 = no size cap */
	int64_t fts_batch;          /* events per full-text index step; 0 =
				     * default (100,000); < 0 = index only in
				     * flush() (tests, bulk loads) */
};

#define STORE_MAX_FILTERS 16

struct store_filter {
	char *name;     /* ECS field name (known or overflow) */
	char *value;    /* exact match; a trailing '*' means prefix */
};

struct store_query {
	int64_t from_us, to_us;     /* inclusive bounds on @timestamp; 0 = open */
	const char *text;           /* full-text query (FTS5 syntax), NULL = none */
	struct store_filter filters[STORE_MAX_FILTERS];
	unsigned n_filters;
	uint32_t limit;             /* page size, 1..1000 */
	uint64_t offset;
	int ascending;              /* default newest first */
};

struct store;

struct store_ops {
	const char *name;
	int (*open)(const struct store_config *cfg, struct store **out);
	void (*close)(struct store *s);
	/* Optional, called by pipeline workers (any thread, in parallel) on
	 * each batch before it is queued for write_batch: per-event work that
	 * needs no store state, such as serialising, so the single writer
	 * does less. Results go to ev->prepared, allocated from a; scratch
	 * is the worker's own buffer. */
	int (*prepare)(struct store *s, struct event *ev, size_t n,
		       struct arena *a, struct buf *scratch);
	/* Stores n events; all or nothing. Idempotent per event id. */
	int (*write_batch)(struct store *s, uint64_t batch_id,
			   const struct event *ev, size_t n);
	/* Appends a JSON array of matching events (newest first unless
	 * ascending) to out and sets *total to the number of all matches. */
	int (*search)(struct store *s, const struct store_query *q,
		      struct buf *out, uint64_t *total);
	/* Background upkeep: full-text indexing, retention. Called by the
	 * writer thread when idle; returns 1 when there is more to do. */
	int (*maintain)(struct store *s);
	/* Makes everything written searchable (flush indexes) before return. */
	int (*flush)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

/* The back-end registered under name, or NULL. */
const struct store_ops *store_backend(const char *name);

#endif
