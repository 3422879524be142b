/*
 * The known ECS fields. The list lives in schema.fields; the build generates
 * the enum (schema_gen.h) and the tables (schema_gen.c), so adding a field is
 * one line there.
 */
#ifndef MAMORI_SCHEMA_H
#define MAMORI_SCHEMA_H

#include <stddef.h>

#include "schema_gen.h"

enum schema_type {
	SCHEMA_KEYWORD,
	SCHEMA_TEXT,
	SCHEMA_LONG,
	SCHEMA_FLOAT,
	SCHEMA_IP,
	SCHEMA_DATE,
	SCHEMA_BOOL,
};

struct schema_field_info {
	const char *name;
	unsigned char len;
	unsigned char type;   /* enum schema_type */
};

extern const struct schema_field_info schema_fields[SCHEMA_NFIELDS];
extern const short schema_hash_slots[SCHEMA_HASH_SIZE];

/* Field index for a name, or -1 when the name is not a known field. O(1). */
int schema_lookup(const char *name, size_t len);

static inline const char *schema_name(int field)
{
	return schema_fields[field].name;
}

#endif
