/*
 * libFuzzer target for the SPF record parser and macro expander: the two
 * pure functions that read a domain's TXT text. Each input is parsed as
 * given and again behind "v=spf1 " (so the term grammar is reached even
 * without the prefix), then checked and expanded as a macro-string in both
 * contexts (domain-spec and explanation), into a roomy and a tiny buffer.
 * Invariants a parse must keep (term offsets inside the text) trap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mail/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ptr_name(void *arg, char *out, size_t cap)
{
	(void)arg;
	if (cap > 0) {
		strncpy(out, "mx.example.org", cap - 1);
		out[cap - 1] = '\0';
	}
}

static void parse_one(const char *p, size_t n, struct spf_record *rec)
{
	char why[128];
	if (spf_parse_record(p, n, rec, why, sizeof(why)) != 0)
		return;
	for (size_t i = 0; i < rec->nterm; i++) {
		const struct spf_term *t = &rec->term[i];
		if ((size_t)t->off + t->len > n || (size_t)t->arg + t->arglen > n)
			__builtin_trap();
	}
	if ((size_t)rec->redirect + rec->redirect_len > n || (size_t)rec->exp + rec->exp_len > n)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * SPF_MAX_RECORD)
		return 0;
	char *p = malloc(size ? size : 1);
	char *q = malloc(size + 7);
	struct spf_record *rec = malloc(sizeof(*rec));
	if (!p || !q || !rec)
		goto done;
	memcpy(p, data, size);
	parse_one(p, size, rec);
	memcpy(q, "v=spf1 ", 7);
	memcpy(q + 7, data, size);
	parse_one(q, size + 7, rec);

	struct spf_macro_env env = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.odomain = "email.example.com", .domain = "email.example.com",
		.helo = "mx.example.org", .receiver = NULL, .af = AF_INET6, .now = 1700000000,
		.ptr_name = ptr_name,
	};
	env.ip[0] = 0x20;
	env.ip[1] = 0x01;
	env.ip[15] = 1;
	char big[4096], tiny[8];
	for (int exp = 0; exp <= 1; exp++) {
		(void)spf_macro_check(p, size, exp);
		long n = spf_macro_expand(&env, p, size, exp, big, sizeof(big));
		if (n >= 0 && (size_t)n != strlen(big))
			__builtin_trap();
		(void)spf_macro_expand(&env, p, size, exp, tiny, sizeof(tiny));
		if (strlen(tiny) >= sizeof(tiny))
			__builtin_trap();
	}
done:
	free(rec);
	free(q);
	free(p);
	return 0;
}
