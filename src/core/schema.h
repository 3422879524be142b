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

struct schema_xname_info {
	const char *name;
	unsigned char len;
};

extern const struct schema_field_info schema_fields[SCHEMA_NFIELDS];
extern const short schema_hash_slots[SCHEMA_HASH_SIZE];   /* fields, then
							   * overflow names */
extern const struct schema_xname_info schema_xnames[SCHEMA_NXNAMES];

/* Field index for a name, or -1 when the name is not a known field. O(1). */
int schema_lookup(const char *name, size_t len);

/* schema_lookup, and for a name that is not a known field its overflow
 * number (XN_*, 0 when it has none) in *xid: one hash for both. */
int schema_lookup_x(const char *name, size_t len, unsigned *xid);

static inline const char *schema_name(int field)
{
	return schema_fields[field].name;
}

#endif
