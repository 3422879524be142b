/*
 * Bump allocator in chunks: per-batch memory that is released in one call.
 * Large requests get a chunk of their own so a big value does not waste the
 * rest of a chunk.
 */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	/* data follows, 16-byte aligned */
	_Alignas(16) char data[];
};

#define ARENA_DEFAULT_CHUNK (64 * 1024)
#define ARENA_DEFAULT_CAP ((size_t)1 << 30)

void arena_init(struct arena *a, size_t chunk_size, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
	a->cap = cap ? cap : ARENA_DEFAULT_CAP;
}

static void chunks_free(struct arena_chunk *c)
{
	struct arena_chunk *next;

	while (c) {
		next = c->next;
		free(c);
		c = next;
	}
}

void arena_fini(struct arena *a)
{
	chunks_free(a->head);
	chunks_free(a->spare);
	a->head = NULL;
	a->spare = NULL;
	a->cur = a->end = NULL;
	a->used = 0;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c = a->head, *next;

	while (c) {
		next = c->next;
		if (c->size == a->chunk_size) {
			c->next = a->spare;
			a->spare = c;
		} else {
			a->used -= sizeof(*c) + c->size;
			free(c);
		}
		c = next;
	}
	a->head = NULL;
	a->cur = a->end = NULL;
}

static int arena_grow(struct arena *a, size_t n)
{
	size_t size = n > a->chunk_size ? n : a->chunk_size;
	struct arena_chunk *c;

	if (size == a->chunk_size && a->spare) {
		/* A kept chunk: already counted in used. */
		c = a->spare;
		a->spare = c->next;
	} else {
		if (a->used + sizeof(*c) + size > a->cap)
			return -1;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return -1;
		c->size = size;
		a->used += sizeof(*c) + size;
	}
	if (a->head && size > a->chunk_size && a->cur != a->end) {
		/* Oversized chunk: link it behind the current one, which keeps
		 * its free space. */
		c->next = a->head->next;
		a->head->next = c;
		return 1;
	}
	c->next = a->head;
	a->head = c;
	a->cur = c->data;
	a->end = c->data + size;
	return 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
	char *p;
	int r;

	n = (n + 7) & ~(size_t)7;
	if (n == 0)
		n = 8;
	if ((size_t)(a->end - a->cur) >= n) {
		p = a->cur;
		a->cur += n;
		return p;
	}
	r = arena_grow(a, n);
	if (r < 0)
		return NULL;
	if (r == 1)
		return a->head->next->data;
	p = a->cur;
	a->cur += n;
	return p;
}

void *arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
