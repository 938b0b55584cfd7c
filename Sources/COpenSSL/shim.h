#pragma once
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/crypto.h>

// The GCM tag through the provider's parameters directly, once per packet: OpenSSL 3's
// EVP_CIPHER_CTX_ctrl(EVP_CTRL_GCM_GET_TAG / SET_TAG) builds the same parameter and adds its own
// dispatch (145 → 106 ns to get, 99 → 75 ns to set, measured on this VM with OpenSSL 3.0.19).
static inline int cmyc_gcm_get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag) {
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, 16),
        OSSL_PARAM_construct_end(),
    };
    return EVP_CIPHER_CTX_get_params(ctx, params);
}
static inline int cmyc_gcm_set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag) {
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, 16),
        OSSL_PARAM_construct_end(),
    };
    return EVP_CIPHER_CTX_set_params(ctx, params);
}

// MARK: TLS 1.3 with an external PSK (private networks, spec §3.5)
//
// The PSK callbacks are C function pointers without a context argument, so they find the
// network's identity and key through the SSL_CTX's app data (ex_data index 0). They live here
// rather than in Swift because building the session is a few plain OpenSSL calls.

typedef struct cmyc_psk {
    unsigned char identity[64];
    size_t identity_len;
    unsigned char key[32];
} cmyc_psk;

// A resumption-style session carrying the external PSK, bound to SHA-256 as OpenSSL's legacy
// PSK callbacks (Rust mycelium-private, `openssl s_client -psk`) bind it.
static inline SSL_SESSION *cmyc_psk_session(SSL *ssl, const cmyc_psk *psk) {
    static const unsigned char aes128gcm_sha256[2] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    if (cipher == NULL) return NULL;
    SSL_SESSION *session = SSL_SESSION_new();
    if (session == NULL) return NULL;
    if (!SSL_SESSION_set1_master_key(session, psk->key, sizeof psk->key)
        || !SSL_SESSION_set_cipher(session, cipher)
        || !SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION)) {
        SSL_SESSION_free(session);
        return NULL;
    }
    return session;
}

// SSL ex_data index 0 of a server connection is set to a non-NULL marker when the client
// offered another identity (network name), so the failure can be logged as such.
static inline int cmyc_psk_find_session(SSL *ssl, const unsigned char *identity, size_t identity_len,
                                        SSL_SESSION **session) {
    const cmyc_psk *psk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
    *session = NULL;
    if (psk == NULL) return 0;
    if (identity_len != psk->identity_len || CRYPTO_memcmp(identity, psk->identity, identity_len) != 0) {
        SSL_set_ex_data(ssl, 0, (void *)psk);
        return 1;  // "no PSK": without a certificate the handshake then fails
    }
    *session = cmyc_psk_session(ssl, psk);
    return *session != NULL;
}

static inline int cmyc_psk_use_session(SSL *ssl, const EVP_MD *md, const unsigned char **identity,
                                       size_t *identity_len, SSL_SESSION **session) {
    (void)md;  // both allowed suites use SHA-256, the PSK's hash
    const cmyc_psk *psk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
    if (psk == NULL) return 0;
    *session = cmyc_psk_session(ssl, psk);
    if (*session == NULL) return 0;
    *identity = psk->identity;
    *identity_len = psk->identity_len;
    return 1;
}

static inline int cmyc_psk_identity_mismatch(SSL *ssl) {
    return SSL_get_ex_data(ssl, 0) != NULL;
}

// One context for both roles: TLS 1.3 only, the two SHA-256 suites, no certificates, no
// tickets, no compression. `psk` must outlive the context.
static inline SSL_CTX *cmyc_psk_context_new(cmyc_psk *psk) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) return NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)
        || !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")
        || !SSL_CTX_set_num_tickets(ctx, 0)
        || !SSL_CTX_set_ex_data(ctx, 0, psk)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_psk_find_session_callback(ctx, cmyc_psk_find_session);
    SSL_CTX_set_psk_use_session_callback(ctx, cmyc_psk_use_session);
    return ctx;
}

// A connection reading from and writing to two memory BIOs (owned by the SSL).
static inline SSL *cmyc_psk_connection_new(SSL_CTX *ctx, int server, BIO **rbio, BIO **wbio) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    *rbio = BIO_new(BIO_s_mem());
    *wbio = BIO_new(BIO_s_mem());
    if (*rbio == NULL || *wbio == NULL) {
        BIO_free(*rbio);
        BIO_free(*wbio);
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_mem_eof_return(*rbio, -1);  // empty means "want more", not EOF
    SSL_set_bio(ssl, *rbio, *wbio);
    if (server) SSL_set_accept_state(ssl); else SSL_set_connect_state(ssl);
    return ssl;
}

// MARK: HKDF-SHA256 (RFC 5869) for session keys (docs/sessions.md)
#include <openssl/kdf.h>

// One call: extract with `salt`, expand with `info` into `out`. Returns 1 on success.
static inline int cmyc_hkdf_sha256(const unsigned char *salt, size_t salt_len,
                                   const unsigned char *ikm, size_t ikm_len,
                                   const unsigned char *info, size_t info_len,
                                   unsigned char *out, size_t out_len) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (ctx == NULL) return 0;
    size_t len = out_len;
    int ok = EVP_PKEY_derive_init(ctx) == 1
          && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1
          && EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)salt_len) == 1
          && EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) == 1
          && EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)info_len) == 1
          && EVP_PKEY_derive(ctx, out, &len) == 1
          && len == out_len;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}
