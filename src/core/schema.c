/* Name → index lookup over the generated open-addressing table. */
#include <stdint.h>
#include <string.h>

#include "core/schema.h"

int schema_lookup(const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	for (i = 0; i < SCHEMA_HASH_SIZE; i++) {
		short f = schema_hash_slots[(h + i) & (SCHEMA_HASH_SIZE - 1)];
		if (f < 0)
			return -1;
		if (schema_fields[f].len == len &&
		    memcmp(schema_fields[f].name, name, len) == 0)
			return f;
	}
	return -1;
}
