/*
 * spf_macro: RFC 7208 section 7 macro strings, checked and expanded.
 *
 * Why one scanner for both: a record is rejected for a bad macro before any
 * term is evaluated (a syntax error anywhere is a permerror), and the same
 * grammar then drives the expansion, so the check and the expansion cannot
 * disagree. Everything is written into caller buffers; parts of a value
 * are cut on the stack with a hard bound on their number.
 */
#include "mail/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MACRO_MAX_PARTS 128
#define MACRO_VALUE_MAX 1024

static int letter_ok(int c, int exp)
{
	switch (tolower(c)) {
	case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v':
		return 1;
	case 'c': case 'r': case 't':
		return exp;
	default:
		return 0;
	}
}

static int is_delim(int c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* One parsed "%{...}": letter, digit count (0 = all), reverse, delimiters. */
struct macro {
	char letter;
	unsigned digits;
	int reverse;
	char delims[8];
	size_t ndelim;
};

/* Parse the macro-expand starting at s[i] == '{'. Returns the index after
 * '}', or 0 on a syntax error. */
static size_t parse_brace(const char *s, size_t len, size_t i, int exp, struct macro *m)
{
	memset(m, 0, sizeof(*m));
	i++; /* '{' */
	if (i >= len || !letter_ok((unsigned char)s[i], exp))
		return 0;
	m->letter = s[i++];
	size_t ndig = 0;
	while (i < len && isdigit((unsigned char)s[i])) {
		if (ndig < 4)
			m->digits = m->digits * 10 + (unsigned)(s[i] - '0');
		ndig++;
		i++;
	}
	if (ndig > 0 && m->digits == 0)
		return 0;
	if (ndig > 3)
		m->digits = 999;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		m->reverse = 1;
		i++;
	}
	while (i < len && is_delim((unsigned char)s[i])) {
		if (m->ndelim < sizeof(m->delims) - 1 && !memchr(m->delims, s[i], m->ndelim))
			m->delims[m->ndelim++] = s[i];
		i++;
	}
	if (i >= len || s[i] != '}')
		return 0;
	return i + 1;
}

int spf_macro_check(const char *s, size_t len, int exp)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c < (exp ? 0x20 : 0x21) || c > 0x7e)
			return -1;
		if (c != '%') {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		char n = s[i + 1];
		if (n == '%' || n == '_' || n == '-') {
			i += 2;
			continue;
		}
		if (n != '{')
			return -1;
		struct macro m;
		size_t next = parse_brace(s, len, i + 1, exp, &m);
		if (!next)
			return -1;
		i = next;
	}
	return 0;
}

/* Output cursor with a hard cap: overflow is remembered, never written. */
struct out {
	char *p;
	size_t cap, n;
	int over;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->over || o->n + n >= o->cap) {
		o->over = 1;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void put_escaped(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			put(o, (const char *)&s[i], 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			put(o, e, 3);
		}
	}
}

/* The raw value of a macro letter into v (cap bytes). */
static void macro_value(const struct spf_macro_env *env, int letter, char *v, size_t cap)
{
	const char *s = NULL;
	v[0] = '\0';
	switch (tolower(letter)) {
	case 's': s = env->sender; break;
	case 'l': s = env->local; break;
	case 'o': s = env->odomain; break;
	case 'd': s = env->domain; break;
	case 'h': s = env->helo; break;
	case 'r': s = env->receiver && *env->receiver ? env->receiver : "unknown"; break;
	case 'v': s = env->af == AF_INET6 ? "ip6" : "in-addr"; break;
	case 't': snprintf(v, cap, "%lld", (long long)env->now); return;
	case 'p':
		if (env->ptr_name)
			env->ptr_name(env->arg, v, cap);
		else
			snprintf(v, cap, "unknown");
		return;
	case 'c':
		if (!inet_ntop(env->af == AF_INET6 ? AF_INET6 : AF_INET, env->ip, v,
			       (socklen_t)cap))
			v[0] = '\0';
		return;
	case 'i':
		if (env->af == AF_INET6) {
			/* Dotted nibbles, upper case as in the OpenSPF suite's
			 * expectations (DNS names compare case-insensitively). */
			static const char hex[] = "0123456789ABCDEF";
			size_t n = 0;
			for (int b = 0; b < 16 && n + 4 < cap; b++) {
				v[n++] = hex[env->ip[b] >> 4];
				v[n++] = '.';
				v[n++] = hex[env->ip[b] & 15];
				v[n++] = '.';
			}
			v[n ? n - 1 : 0] = '\0';
		} else {
			snprintf(v, cap, "%u.%u.%u.%u", env->ip[0], env->ip[1], env->ip[2],
				 env->ip[3]);
		}
		return;
	default:
		return;
	}
	snprintf(v, cap, "%s", s ? s : "");
}

/* Split, reverse, keep the right-hand parts, join with dots. */
static void macro_apply(const struct macro *m, const char *v, struct out *o)
{
	const char *delims = m->ndelim ? m->delims : ".";
	const char *part[MACRO_MAX_PARTS];
	size_t plen[MACRO_MAX_PARTS];
	size_t np = 0, vlen = strlen(v), start = 0;
	for (size_t i = 0; i <= vlen; i++) {
		if (i == vlen || strchr(delims, v[i])) {
			if (np == MACRO_MAX_PARTS) {
				/* Fold the rest into the last part: bounded, never lost. */
				plen[np - 1] = vlen - (size_t)(part[np - 1] - v);
				break;
			}
			part[np] = v + start;
			plen[np] = i - start;
			np++;
			start = i + 1;
		}
	}
	size_t first = 0;
	if (m->digits && m->digits < np)
		first = np - m->digits;
	char tmp[MACRO_VALUE_MAX];
	struct out t = {tmp, sizeof(tmp), 0, 0};
	for (size_t k = first; k < np; k++) {
		/* Parts are reversed first, then the right-hand ones kept. */
		size_t idx = m->reverse ? np - 1 - k : k;
		if (k > first)
			put(&t, ".", 1);
		put(&t, part[idx], plen[idx]);
	}
	if (t.over) {
		o->over = 1;
		return;
	}
	if (isupper((unsigned char)m->letter))
		put_escaped(o, tmp, t.n);
	else
		put(o, tmp, t.n);
}

long spf_macro_expand(const struct spf_macro_env *env, const char *s, size_t len, int exp,
		      char *out, size_t cap)
{
	if (cap == 0)
		return -2;
	struct out o = {out, cap, 0, 0};
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c != '%') {
			/* Explanation text may hold spaces; a domain-spec never
			 * reaches here with one (the record splits on spaces). */
			if (c < (exp ? 0x20 : 0x21) || c > 0x7e)
				goto syntax;
			put(&o, &s[i], 1);
			i++;
			continue;
		}
		if (i + 1 >= len)
			goto syntax;
		char n = s[i + 1];
		if (n == '%' || n == '_' || n == '-') {
			put(&o, n == '%' ? "%" : n == '_' ? " " : "%20", n == '-' ? 3 : 1);
			i += 2;
			continue;
		}
		if (n != '{')
			goto syntax;
		struct macro m;
		size_t next = parse_brace(s, len, i + 1, exp, &m);
		if (!next)
			goto syntax;
		char v[MACRO_VALUE_MAX];
		macro_value(env, m.letter, v, sizeof(v));
		macro_apply(&m, v, &o);
		i = next;
	}
	out[o.n] = '\0';
	return o.over ? -2 : (long)o.n;
syntax:
	out[o.n] = '\0';
	return -1;
}
