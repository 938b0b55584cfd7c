#pragma once
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/rand.h>

// EVP_CTRL_* are plain integer macros and import fine; these wrappers exist only where
// OpenSSL uses function-like macros Swift cannot import.
static inline int cmyc_gcm_get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
}
static inline int cmyc_gcm_set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag);
}
