/*
 * Keys made by the mail tests: an RSA key of any size or an Ed25519 key,
 * its PEM private key (for a signer) and its DKIM key record (for the
 * in-memory zone). Header-only, for the test files that include cmocka.
 */
#ifndef MAMORI_TEST_MAIL_KEYS_H
#define MAMORI_TEST_MAIL_KEYS_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tkey {
	EVP_PKEY *pk;
	char *pem;
	size_t pem_len;
	char rec[4096];
};

static inline void tkey_make(struct tkey *k, int type, int bits)
{
	memset(k, 0, sizeof(*k));
	k->pk = type == EVP_PKEY_RSA ? EVP_RSA_gen((unsigned)bits)
				     : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k->pk);
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, k->pk, NULL, NULL, 0, NULL, NULL), 1);
	char *p = NULL;
	long l = BIO_get_mem_data(b, &p);
	k->pem = malloc((size_t)l + 1);
	memcpy(k->pem, p, (size_t)l);
	k->pem[l] = '\0';
	k->pem_len = (size_t)l;
	BIO_free(b);
	unsigned char der[2048];
	size_t dl = sizeof(der);
	if (type == EVP_PKEY_RSA) {
		unsigned char *q = der;
		int n = i2d_PUBKEY(k->pk, &q);
		assert_true(n > 0);
		dl = (size_t)n;
	} else {
		assert_int_equal(EVP_PKEY_get_raw_public_key(k->pk, der, &dl), 1);
	}
	char b64[3000];
	EVP_EncodeBlock((unsigned char *)b64, der, (int)dl);
	snprintf(k->rec, sizeof(k->rec), "v=DKIM1; k=%s; p=%s",
		 type == EVP_PKEY_RSA ? "rsa" : "ed25519", b64);
}

static inline void tkey_free(struct tkey *k)
{
	EVP_PKEY_free(k->pk);
	free(k->pem);
}

#endif
