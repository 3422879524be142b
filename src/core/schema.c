/* Name → index lookup over the generated open-addressing table. */
#include <stdint.h>
#include <string.h>

#include "core/schema.h"

/* Slot value of a name in the one table of fields and overflow names, or
 * -1 (schema_gen.c: values from SCHEMA_NFIELDS up are overflow names). */
static int slot_of(const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	for (size_t i = 0; i < SCHEMA_HASH_SIZE; i++) {
		int v = schema_hash_slots[(h + i) & (SCHEMA_HASH_SIZE - 1)];
		const char *n;
		size_t nl;

		if (v < 0)
			return -1;
		if (v < SCHEMA_NFIELDS) {
			n = schema_fields[v].name;
			nl = schema_fields[v].len;
		} else {
			n = schema_xnames[v - SCHEMA_NFIELDS + 1].name;
			nl = schema_xnames[v - SCHEMA_NFIELDS + 1].len;
		}
		if (nl == len && memcmp(n, name, len) == 0)
			return v;
	}
	return -1;
}

int schema_lookup(const char *name, size_t len)
{
	int v = slot_of(name, len);

	return v < SCHEMA_NFIELDS ? v : -1;
}

int schema_lookup_x(const char *name, size_t len, unsigned *xid)
{
	int v = slot_of(name, len);

	*xid = v >= SCHEMA_NFIELDS ? (unsigned)(v - SCHEMA_NFIELDS + 1) : 0;
	return v < SCHEMA_NFIELDS ? v : -1;
}
