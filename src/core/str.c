/* Checked number parsing for slices (no atoi, no sscanf). */
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/str.h"

int str_to_i64(struct str s, int64_t *out)
{
	uint64_t v = 0, limit = (uint64_t)INT64_MAX;
	uint32_t i = 0;
	int neg = 0;

	if (s.n == 0)
		return M_EPARSE;
	if (s.p[0] == '-') {
		neg = 1;
		limit += 1;
		i = 1;
		if (s.n == 1)
			return M_EPARSE;
	}
	for (; i < s.n; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';
		if (d > 9)
			return M_EPARSE;
		if (v > (limit - d) / 10)
			return M_EPARSE;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return M_OK;
}

struct str str_lower(struct arena *a, struct str v)
{
	char *o;
	uint32_t i;

	for (i = 0; i < v.n; i++)
		if (v.p[i] >= 'A' && v.p[i] <= 'Z')
			break;
	if (i == v.n || !(o = arena_alloc(a, v.n)))
		return v;
	for (i = 0; i < v.n; i++)
		o[i] = (char)str_lower_byte((unsigned char)v.p[i]);
	return str_make(o, v.n);
}
