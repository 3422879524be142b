/*
 * libFuzzer target for ARC (and DKIM) on a whole message: the input is a
 * message text; it is parsed (msg_parse), its ARC chain validated and its
 * DKIM signatures verified against an in-memory zone holding an Ed25519
 * key (the RFC 8032 7.1 test key) under the names a fuzzer is likely to
 * find from the seed corpus, then sealed with that key, so the chain
 * collection, the structural checks, canonicalization and the seal
 * builder all see hostile fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/arc.h"
#include "mail/dkim.h"
#include "mail/dkim_int.h"
#include "mail/mdns.h"
#include "mail/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mdns *zone;
static struct dkim_signer signer;

static void setup(void)
{
	/* RFC 8032 section 7.1, test 1: a public test vector, not a secret */
	static const unsigned char seed[32] = {
		0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
		0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
		0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
	};
	static const char rec[] =
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	static const char *const names[] = { "ed._domainkey.example.org",
					     "dummy._domainkey.example.org",
					     "sel._domainkey.example.com" };
	zone = mdns_zone_new();
	for (size_t i = 0; zone && i < sizeof(names) / sizeof(names[0]); i++)
		mdns_zone_add_txt(zone, names[i], rec, sizeof(rec) - 1);
	memset(&signer, 0, sizeof(signer));
	memcpy(signer.domain, "example.org", 12);
	memcpy(signer.selector, "ed", 3);
	memcpy(signer.headers, "from:to:subject:date", 21);
	signer.pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	signer.alg = DKIM_A_ED25519_SHA256;
	signer.hc = signer.bc = DKIM_C_RELAXED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!zone)
		setup();
	if (!zone || !signer.pk)
		return 0;
	int err = 0;
	struct msg *m = msg_parse((const char *)data, size, &err, NULL);
	if (!m)
		return 0;
	struct arc_verify_out vo;
	struct dkim_verify_out dv;
	(void)arc_verify(zone, m, 1667843664, &vo);
	(void)dkim_verify(zone, m, 1667843664, &dv);
	char *aar = NULL, *ams = NULL, *as = NULL;
	if (arc_seal(&signer, m, "mx.example.org", "spf=pass", vo.cv, 1667843664, &aar, &ams,
		     &as) == 0) {
		free(aar);
		free(ams);
		free(as);
	}
	msg_free(m);
	return 0;
}
