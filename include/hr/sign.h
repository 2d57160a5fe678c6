/* sign.h - secrets compared and signatures computed with libcrypto. */
#ifndef HR_SIGN_H
#define HR_SIGN_H

#include <stdbool.h>

/*
 * Constant-time equality of two secret strings: both are hashed with
 * SHA-256 first, so neither their bytes nor their lengths leak through
 * timing. Either may be NULL (never equal).
 */
bool hr_token_equal(const char *given, const char *expected);

#endif
