/*
 * libFuzzer target for the DKIM tag-list parsers: the input's first byte
 * picks what the rest is read as: a DKIM-Signature, an
 * ARC-Message-Signature or an ARC-Seal field value (parsed, then its
 * canonical header data built over a small fixed header set, as the
 * verifier does), or a key record (parsed into a public key). Every parser
 * that reads DNS or message bytes has its own fuzzer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dkim_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[3] = { "DKIM-Signature", "ARC-Message-Signature", "ARC-Seal" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0] % 4;
	data++;
	size--;
	if (mode == 3) {
		struct dkim_key k;
		char why[96];
		char *p = malloc(size ? size : 1);
		if (!p)
			return 0;
		memcpy(p, data, size);
		(void)dkim_key_parse(p, size, &k, why, sizeof(why));
		dkim_key_fini(&k);
		free(p);
		return 0;
	}
	size_t nl = strlen(names[mode]);
	struct msg_hdr f;
	f.len = nl + 1 + size + 2;
	f.name_len = nl;
	f.raw = malloc(f.len);
	struct dkim_sig *sig = malloc(sizeof(*sig));
	if (!f.raw || !sig) {
		free(f.raw);
		free(sig);
		return 0;
	}
	memcpy(f.raw, names[mode], nl);
	f.raw[nl] = ':';
	memcpy(f.raw + nl + 1, data, size);
	memcpy(f.raw + nl + 1 + size, "\r\n", 2);
	char why[128];
	if (dkim_sig_parse(&f, (enum dkim_kind)mode, sig, why, sizeof(why)) == 0) {
		static char h1[] = "From: a@example.com\r\n";
		static char h2[] = "Subject: x \r\n\ty\r\n";
		struct msg_hdr hs[3] = {
			{ h1, sizeof(h1) - 1, 4 },
			{ h2, sizeof(h2) - 1, 7 },
			f,
		};
		struct dkim_hdrs hh = { hs, 3 };
		struct dkim_buf out = { 0 };
		(void)dkim_sig_header_data(&hh, sig, &out);
		dkim_buf_fini(&out);
	}
	free(sig);
	free(f.raw);
	return 0;
}
