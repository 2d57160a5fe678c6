/*
 * sign.c - comparisons and MACs over secrets, all through libcrypto.
 *
 * Nothing here is hand-written cryptography: SHA-256 and CRYPTO_memcmp come
 * from OpenSSL, so a secret is never compared with an early-exit memcmp.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "hr/sign.h"

bool
hr_token_equal(const char *given, const char *expected)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned alen = 0, blen = 0;

	if (given == NULL || expected == NULL)
		return false;
	if (EVP_Digest(given, strlen(given), a, &alen, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(expected, strlen(expected), b, &blen, EVP_sha256(), NULL) != 1)
		return false;
	return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}
