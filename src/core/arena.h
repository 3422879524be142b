/*
 * Arenas: per-batch (or per-message) memory freed in one call. Allocation is
 * a pointer bump inside chunks; every arena has a hard cap so hostile input
 * cannot grow one without bound.
 */
#ifndef MAMORI_ARENA_H
#define MAMORI_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;   /* current chunk, older ones linked behind */
	struct arena_chunk *spare;  /* standard chunks kept by arena_reset */
	char *cur, *end;            /* free space in head */
	size_t chunk_size;          /* default size of a new chunk */
	size_t used;                /* bytes obtained from malloc */
	size_t cap;                 /* hard maximum of used; 0 = 1 GiB */
};

/* Caller-owned struct; chunk_size 0 picks 64 KiB. */
void arena_init(struct arena *a, size_t chunk_size, size_t cap);
/* Frees every chunk; the arena can be used again afterwards. */
void arena_fini(struct arena *a);
/* Empties the arena but keeps its standard-size chunks for reuse (up to the
 * cap), so a recycled arena allocates nothing in steady state; oversized
 * chunks are freed. */
void arena_reset(struct arena *a);

/* 8-byte aligned, uninitialised; NULL when the cap is reached. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
