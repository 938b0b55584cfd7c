// ngtcp2 0.12 + GnuTLS glue; see include/CQUIC.h for the contract.
//
// Flow: the caller reads a UDP payload → cq_conn_read → ngtcp2 decrypts and calls the
// callbacks below (stream bytes, datagrams, handshake done) → they call the caller's
// cq_callbacks. The caller then drains cq_conn_write until it returns 0 and arms a timer
// for cq_conn_expiry. Stream bytes live in `chunk`s from cq_conn_stream_send until ngtcp2
// reports them acknowledged (it retransmits from our memory, it does not copy).

#include "CQUIC.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// TLS 1.3 only, the ciphers QUIC defines, and no middlebox compatibility mode (RFC 9001 §8.4).
static const char *const priority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:"
    "%DISABLE_TLS13_COMPAT_MODE";

// The server name Rust Mycelium's client sends (spec §3.6); its certificate is not checked.
static const char server_name[] = "dummy.mycelium";

struct cq_tls {
    gnutls_certificate_credentials_t server_cred;
    gnutls_certificate_credentials_t client_cred;
    // Stateless reset tokens are derived from this and a connection id (RFC 9000 §10.3.2):
    // random per start unless the caller sets one that survives restarts.
    uint8_t reset_secret[CQ_RESET_SECRET_LEN];
};

typedef struct chunk {
    struct chunk *next;
    uint64_t offset;  // stream offset of data[0]
    size_t len;
    uint8_t data[];
} chunk;

struct cq_conn {
    ngtcp2_conn *conn;
    gnutls_session_t session;
    ngtcp2_crypto_conn_ref ref;
    cq_callbacks cb;
    uint32_t key;
    int64_t stream_id;      // our stream for sending, -1 until opened or first seen
    chunk *head, *tail;     // unacknowledged stream bytes, in offset order
    chunk *cursor;          // the chunk holding `sent`
    uint64_t sent;          // stream offset handed to ngtcp2
    uint64_t queued;        // stream offset appended
    uint64_t acked;         // stream offset acknowledged
    int liberr;             // the failure that ends the connection, 0 while none
    // Where packets go: ngtcp2's path, which moves after a validated address change (a NAT
    // rebinding the peer's port). `remote_moved` until the caller has taken the new one.
    struct sockaddr_storage remote;
    socklen_t remotelen;
    int remote_moved;
    uint8_t reset_secret[CQ_RESET_SECRET_LEN];  // the endpoint's, for tokens of new ids
};

static void set_remote(cq_conn *c, const struct sockaddr *addr, socklen_t len) {
    if (len == 0 || len > sizeof c->remote) return;
    if (len == c->remotelen && memcmp(&c->remote, addr, len) == 0) return;
    memcpy(&c->remote, addr, len);
    c->remotelen = len;
    c->remote_moved = 1;
}

static void set_err(char *err, size_t errlen, const char *what, int rv) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rv));
}

cq_tls *cq_tls_new(const char *subject_alt_name, char *err, size_t errlen) {
    cq_tls *tls = calloc(1, sizeof *tls);
    if (!tls) return NULL;
    (void)gnutls_rnd(GNUTLS_RND_KEY, tls->reset_secret, sizeof tls->reset_secret);
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rv;
#define CHECK(call, what)                     \
    if ((rv = (call)) < 0) {                  \
        set_err(err, errlen, what, rv);       \
        goto fail;                            \
    }
    CHECK(gnutls_x509_privkey_init(&key), "private key");
    CHECK(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
          "ECDSA P-256 key");
    CHECK(gnutls_x509_crt_init(&crt), "certificate");
    CHECK(gnutls_x509_crt_set_version(crt, 3), "certificate version");
    unsigned char serial[16];
    CHECK(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial), "serial");
    serial[0] &= 0x7f;
    CHECK(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "serial");
    time_t now = time(NULL);
    CHECK(gnutls_x509_crt_set_activation_time(crt, now - 3600), "activation time");
    CHECK(gnutls_x509_crt_set_expiration_time(crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION), "expiration time");
    static const char cn[] = "mycelium";
    CHECK(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, sizeof cn - 1), "subject");
    CHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, subject_alt_name,
                                               (unsigned)strlen(subject_alt_name), GNUTLS_FSAN_SET),
          "subject alt name");
    CHECK(gnutls_x509_crt_set_key(crt, key), "certificate key");
    CHECK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), "self-signature");
    CHECK(gnutls_certificate_allocate_credentials(&tls->server_cred), "server credentials");
    CHECK(gnutls_certificate_set_x509_key(tls->server_cred, &crt, 1, key), "server credentials");
    CHECK(gnutls_certificate_allocate_credentials(&tls->client_cred), "client credentials");
#undef CHECK
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return tls;
fail:
    if (crt) gnutls_x509_crt_deinit(crt);
    if (key) gnutls_x509_privkey_deinit(key);
    cq_tls_free(tls);
    return NULL;
}

void cq_tls_free(cq_tls *tls) {
    if (!tls) return;
    if (tls->server_cred) gnutls_certificate_free_credentials(tls->server_cred);
    if (tls->client_cred) gnutls_certificate_free_credentials(tls->client_cred);
    free(tls);
}

// MARK: ngtcp2 callbacks

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx) {
    (void)rand_ctx;
    (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static void make_cid(uint32_t key, ngtcp2_cid *cid) {
    uint8_t b[CQ_CID_LEN];
    b[0] = (uint8_t)(key >> 24);
    b[1] = (uint8_t)(key >> 16);
    b[2] = (uint8_t)(key >> 8);
    b[3] = (uint8_t)key;
    (void)gnutls_rnd(GNUTLS_RND_NONCE, b + CQ_CONN_KEY_LEN, CQ_CID_LEN - CQ_CONN_KEY_LEN);
    ngtcp2_cid_init(cid, b, CQ_CID_LEN);
}

static int get_new_connection_id_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                                    void *user_data) {
    (void)conn;
    (void)cidlen;  // always CQ_CID_LEN: the length ngtcp2 was given with the first id
    cq_conn *c = user_data;
    make_cid(c->key, cid);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, c->reset_secret, sizeof c->reset_secret, cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data) {
    (void)conn;
    cq_conn *c = user_data;
    if (c->cb.handshake_completed) c->cb.handshake_completed(c->cb.ctx);
    return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t stream_id, void *user_data) {
    (void)conn;
    cq_conn *c = user_data;
    if (c->cb.stream_open) c->cb.stream_open(c->cb.ctx, stream_id);
    return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t datalen, void *user_data, void *stream_user_data) {
    (void)offset;
    (void)stream_user_data;
    cq_conn *c = user_data;
    if (c->cb.stream_data) c->cb.stream_data(c->cb.ctx, stream_id, data, datalen, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
    // The caller consumed the bytes (its own buffer is bounded): open the windows again.
    ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
    ngtcp2_conn_extend_max_offset(conn, datalen);
    return 0;
}

static int recv_datagram_cb(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t datalen, void *user_data) {
    (void)conn;
    (void)flags;
    cq_conn *c = user_data;
    if (c->cb.datagram) c->cb.datagram(c->cb.ctx, data, datalen);
    return 0;
}

static int acked_stream_data_offset_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset, uint64_t datalen,
                                       void *user_data, void *stream_user_data) {
    (void)conn;
    (void)stream_id;
    (void)stream_user_data;
    cq_conn *c = user_data;
    uint64_t end = offset + datalen;
    if (end > c->acked) c->acked = end;
    // Acknowledgements arrive in order from the stream's start: free whole chunks behind them.
    while (c->head && c->head->offset + c->head->len <= c->acked && c->head != c->cursor) {
        chunk *done = c->head;
        c->head = done->next;
        if (c->tail == done) c->tail = NULL;
        free(done);
    }
    return 0;
}

static ngtcp2_conn *get_conn_cb(ngtcp2_crypto_conn_ref *ref) { return ((cq_conn *)ref->user_data)->conn; }

static void fill_callbacks(ngtcp2_callbacks *cb, int server) {
    memset(cb, 0, sizeof *cb);
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = rand_cb;
    cb->get_new_connection_id = get_new_connection_id_cb;
    cb->handshake_completed = handshake_completed_cb;
    cb->stream_open = stream_open_cb;
    cb->recv_stream_data = recv_stream_data_cb;
    cb->recv_datagram = recv_datagram_cb;
    cb->acked_stream_data_offset = acked_stream_data_offset_cb;
}

static void fill_settings(ngtcp2_settings *s, const cq_params *p, uint64_t now) {
    ngtcp2_settings_default(s);
    s->initial_ts = now;
    s->max_tx_udp_payload_size = p && p->max_udp_payload ? p->max_udp_payload : 1452;
    // Send full-size packets at once: Mycelium's datagrams carry whole ~1.4 kB packets.
    s->no_tx_udp_payload_size_shaping = 1;
    s->handshake_timeout = p && p->handshake_timeout_ns ? p->handshake_timeout_ns : 10 * NGTCP2_SECONDS;
}

static void fill_params(ngtcp2_transport_params *t, const cq_params *p) {
    ngtcp2_transport_params_default(t);
    uint64_t stream_window = p && p->stream_window ? p->stream_window : 10 * 1024 * 1024;
    t->initial_max_stream_data_bidi_local = stream_window;
    t->initial_max_stream_data_bidi_remote = stream_window;
    t->initial_max_stream_data_uni = 0;
    t->initial_max_data = p && p->connection_window ? p->connection_window : 16 * 1024 * 1024;
    t->initial_max_streams_bidi = 5;  // as Rust: the dialler opens one
    t->initial_max_streams_uni = 0;
    t->max_idle_timeout = p && p->idle_timeout_ns ? p->idle_timeout_ns : 60 * NGTCP2_SECONDS;
    t->max_datagram_frame_size = 65535;  // RFC 9221: Rust drops a peer that does not offer it
}

static void fill_path(ngtcp2_path *path, const struct sockaddr *local, socklen_t locallen,
                      const struct sockaddr *remote, socklen_t remotelen) {
    memset(path, 0, sizeof *path);
    path->local.addr = (ngtcp2_sockaddr *)local;
    path->local.addrlen = locallen;
    path->remote.addr = (ngtcp2_sockaddr *)remote;
    path->remote.addrlen = remotelen;
}

static int setup_session(cq_conn *c, cq_tls *tls, int server) {
    unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA;
    if (gnutls_init(&c->session, flags) < 0) return -1;
    int rv = server ? ngtcp2_crypto_gnutls_configure_server_session(c->session)
                    : ngtcp2_crypto_gnutls_configure_client_session(c->session);
    if (rv != 0) return -1;
    if (gnutls_priority_set_direct(c->session, priority, NULL) < 0) return -1;
    if (gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, server ? tls->server_cred : tls->client_cred) < 0)
        return -1;
    if (!server && gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, server_name, sizeof server_name - 1) < 0)
        return -1;
    c->ref.get_conn = get_conn_cb;
    c->ref.user_data = c;
    gnutls_session_set_ptr(c->session, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->conn, c->session);
    return 0;
}

static cq_conn *new_conn(uint32_t key, cq_callbacks callbacks) {
    cq_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->key = key;
    c->cb = callbacks;
    c->stream_id = -1;
    return c;
}

/// Creates the ngtcp2 connection of `c` (client without `hd`, server for the Initial `hd`)
/// and its TLS session; frees `c` on failure.
static cq_conn *start_conn(cq_conn *c, cq_tls *tls, const ngtcp2_pkt_hd *hd, const struct sockaddr *local,
                           socklen_t locallen, const struct sockaddr *remote, socklen_t remotelen,
                           const cq_params *params, uint64_t now_ns, int *error) {
    int server = hd != NULL;
    set_remote(c, remote, remotelen);
    c->remote_moved = 0;
    memcpy(c->reset_secret, tls->reset_secret, sizeof c->reset_secret);
    ngtcp2_cid scid;
    make_cid(c->key, &scid);
    ngtcp2_path path;
    fill_path(&path, local, locallen, remote, remotelen);
    ngtcp2_callbacks cb;
    fill_callbacks(&cb, server);
    ngtcp2_settings settings;
    fill_settings(&settings, params, now_ns);
    ngtcp2_transport_params tp;
    fill_params(&tp, params);
    int rv;
    if (server) {
        tp.original_dcid = hd->dcid;
        // The token for the id the peer addresses first: a reset works from the first packet.
        if (ngtcp2_crypto_generate_stateless_reset_token(tp.stateless_reset_token, c->reset_secret,
                                                         sizeof c->reset_secret, &scid) == 0)
            tp.stateless_reset_token_present = 1;
        rv = ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &path, hd->version, &cb, &settings, &tp, NULL, c);
    } else {
        // The client's first destination id is random, 16 bytes (the server picks its own).
        ngtcp2_cid dcid;
        uint8_t d[16];
        (void)gnutls_rnd(GNUTLS_RND_NONCE, d, sizeof d);
        ngtcp2_cid_init(&dcid, d, sizeof d);
        rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings, &tp, NULL, c);
    }
    if (rv != 0) {
        *error = rv;
        free(c);
        return NULL;
    }
    // As Rust's: a PING after 20 s without packets keeps NAT bindings and the 60 s idle timeout
    // from ending a quiet link.
    ngtcp2_conn_set_keep_alive_timeout(c->conn, 20 * NGTCP2_SECONDS);
    if (setup_session(c, tls, server) != 0) {
        *error = NGTCP2_ERR_CRYPTO;
        cq_conn_free(c);
        return NULL;
    }
    return c;
}

cq_conn *cq_conn_client(cq_tls *tls, uint32_t conn_key, const struct sockaddr *local, socklen_t locallen,
                        const struct sockaddr *remote, socklen_t remotelen, const cq_params *params,
                        cq_callbacks callbacks, uint64_t now_ns, int *error) {
    cq_conn *c = new_conn(conn_key, callbacks);
    if (!c) {
        *error = NGTCP2_ERR_NOMEM;
        return NULL;
    }
    return start_conn(c, tls, NULL, local, locallen, remote, remotelen, params, now_ns, error);
}

int cq_accept(const uint8_t *pkt, size_t len) {
    ngtcp2_pkt_hd hd;
    return ngtcp2_accept(&hd, pkt, len);
}

cq_conn *cq_conn_server(cq_tls *tls, uint32_t conn_key, const struct sockaddr *local, socklen_t locallen,
                        const struct sockaddr *remote, socklen_t remotelen, const uint8_t *pkt, size_t len,
                        const cq_params *params, cq_callbacks callbacks, uint64_t now_ns, int *error) {
    ngtcp2_pkt_hd hd;
    int rv = ngtcp2_accept(&hd, pkt, len);
    if (rv != 0) {
        *error = rv;
        return NULL;
    }
    cq_conn *c = new_conn(conn_key, callbacks);
    if (!c) {
        *error = NGTCP2_ERR_NOMEM;
        return NULL;
    }
    return start_conn(c, tls, &hd, local, locallen, remote, remotelen, params, now_ns, error);
}

int cq_packet_dcid(const uint8_t *pkt, size_t len, uint8_t *dcid, size_t *dcidlen, int *is_long_header) {
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, CQ_CID_LEN);
    // A version we do not speak still names a connection id; the caller drops it.
    if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) return rv;
    if (vc.dcidlen > NGTCP2_MAX_CIDLEN) return NGTCP2_ERR_INVALID_ARGUMENT;
    memcpy(dcid, vc.dcid, vc.dcidlen);
    *dcidlen = vc.dcidlen;
    *is_long_header = (pkt[0] & 0x80) != 0;
    return 0;
}

int cq_conn_read(cq_conn *c, const struct sockaddr *local, socklen_t locallen, const struct sockaddr *remote,
                 socklen_t remotelen, const uint8_t *pkt, size_t len, uint64_t now_ns) {
    ngtcp2_path path;
    fill_path(&path, local, locallen, remote, remotelen);
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, len, now_ns);
    if (rv != 0) {
        c->liberr = rv;
        return rv;
    }
    // The peer's first stream is ours too (the dialler opens it; the acceptor answers on it).
    return 0;
}

ssize_t cq_conn_write(cq_conn *c, uint8_t *out, size_t cap, uint64_t now_ns) {
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    if (c->stream_id >= 0 && c->sent < c->queued && c->cursor) {
        size_t at = (size_t)(c->sent - c->cursor->offset);
        ngtcp2_vec v = {c->cursor->data + at, c->cursor->len - at};
        ngtcp2_ssize taken = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, out, cap, &taken, NGTCP2_WRITE_STREAM_FLAG_NONE,
                                                   c->stream_id, &v, 1, now_ns);
        if (n > 0) set_remote(c, (const struct sockaddr *)ps.path.remote.addr, (socklen_t)ps.path.remote.addrlen);
        if (n >= 0) {
            if (taken > 0) {
                c->sent += (uint64_t)taken;
                if (c->sent == c->cursor->offset + c->cursor->len) c->cursor = c->cursor->next;
            }
            if (n > 0 || taken > 0) return n;
            return 0;
        }
        if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
            // The peer reset or stopped our one stream: control traffic cannot flow any more.
            c->liberr = (int)n;
            return n;
        }
        if (n != NGTCP2_ERR_STREAM_DATA_BLOCKED) {
            c->liberr = (int)n;
            return n;
        }
    }
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, out, cap, NULL, NGTCP2_WRITE_STREAM_FLAG_NONE, -1,
                                               NULL, 0, now_ns);
    if (n < 0) c->liberr = (int)n;
    if (n > 0) set_remote(c, (const struct sockaddr *)ps.path.remote.addr, (socklen_t)ps.path.remote.addrlen);
    return n;
}

ssize_t cq_conn_write_datagram(cq_conn *c, uint8_t *out, size_t cap, const uint8_t *data, size_t len, int *accepted,
                               uint64_t now_ns) {
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_vec v = {(uint8_t *)data, len};
    *accepted = 0;
    ngtcp2_ssize n = ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, out, cap, accepted,
                                                 NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, &v, 1, now_ns);
    if (n == NGTCP2_ERR_INVALID_ARGUMENT) return n;  // can never fit: the caller drops the datagram
    if (n < 0) c->liberr = (int)n;
    if (n > 0) set_remote(c, (const struct sockaddr *)ps.path.remote.addr, (socklen_t)ps.path.remote.addrlen);
    return n;
}

int cq_conn_open_stream(cq_conn *c, int64_t *stream_id) {
    if (c->stream_id >= 0) {
        *stream_id = c->stream_id;
        return 0;
    }
    int rv = ngtcp2_conn_open_bidi_stream(c->conn, stream_id, NULL);
    if (rv == 0) c->stream_id = *stream_id;
    return rv;
}

int cq_conn_stream_send(cq_conn *c, int64_t stream_id, const uint8_t *data, size_t len, size_t limit) {
    if (c->stream_id < 0) c->stream_id = stream_id;
    if (stream_id != c->stream_id) return NGTCP2_ERR_INVALID_ARGUMENT;
    if (len == 0) return 0;
    if (c->queued - c->acked + len > limit) return NGTCP2_ERR_NOBUF;
    chunk *k = malloc(sizeof *k + len);
    if (!k) return NGTCP2_ERR_NOMEM;
    k->next = NULL;
    k->offset = c->queued;
    k->len = len;
    memcpy(k->data, data, len);
    if (c->tail) c->tail->next = k; else c->head = k;
    c->tail = k;
    if (!c->cursor) c->cursor = k;
    c->queued += len;
    return 0;
}

size_t cq_conn_stream_buffered(const cq_conn *c) { return (size_t)(c->queued - c->acked); }

int cq_conn_take_moved_remote(cq_conn *c, struct sockaddr_storage *out, socklen_t *len) {
    if (!c->remote_moved) return 0;
    c->remote_moved = 0;
    memcpy(out, &c->remote, c->remotelen);
    *len = c->remotelen;
    return 1;
}

void cq_conn_update_tx_time(cq_conn *c, uint64_t now_ns) { ngtcp2_conn_update_pkt_tx_time(c->conn, now_ns); }

uint64_t cq_conn_expiry(const cq_conn *c) { return ngtcp2_conn_get_expiry(c->conn); }

int cq_conn_handle_expiry(cq_conn *c, uint64_t now_ns) {
    int rv = ngtcp2_conn_handle_expiry(c->conn, now_ns);
    if (rv != 0) c->liberr = rv;
    return rv;
}

ssize_t cq_conn_write_close(cq_conn *c, uint8_t *out, size_t cap, uint64_t code, uint64_t now_ns) {
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_default(&ccerr);
    if (c->liberr != 0) {
        ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, c->liberr, NULL, 0);
    } else {
        ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
    }
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    return ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, out, cap, &ccerr, now_ns);
}

void cq_tls_set_reset_secret(cq_tls *tls, const uint8_t *secret, size_t len) {
    memset(tls->reset_secret, 0, sizeof tls->reset_secret);
    memcpy(tls->reset_secret, secret, len < sizeof tls->reset_secret ? len : sizeof tls->reset_secret);
}

ssize_t cq_write_stateless_reset(const cq_tls *tls, const uint8_t *dcid, size_t dcidlen, size_t received, uint8_t *out,
                                 size_t cap) {
    // Smaller than what provoked it, so two endpoints cannot keep resetting each other, and
    // never answering one this small (RFC 9000 §10.3.3).
    if (received < CQ_RESET_MIN_TRIGGER || dcidlen == 0 || dcidlen > NGTCP2_MAX_CIDLEN) return 0;
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    if (ngtcp2_crypto_generate_stateless_reset_token(token, tls->reset_secret, sizeof tls->reset_secret, &cid) != 0)
        return -1;
    uint8_t rand[CQ_RESET_MIN_TRIGGER - 1 - NGTCP2_STATELESS_RESET_TOKENLEN];
    (void)gnutls_rnd(GNUTLS_RND_NONCE, rand, sizeof rand);
    return ngtcp2_pkt_write_stateless_reset(out, cap, token, rand, sizeof rand);
}

int cq_conn_handshake_completed(const cq_conn *c) { return ngtcp2_conn_get_handshake_completed(c->conn); }

int cq_conn_export_keying_material(const cq_conn *c, const char *label, size_t label_len, uint8_t *out, size_t out_len) {
    if (!ngtcp2_conn_get_handshake_completed(c->conn)) return -1;
    return gnutls_prf_rfc5705(c->session, label_len, label, 0, NULL, out_len, (char *)out) == 0 ? 0 : -1;
}

uint64_t cq_conn_max_datagram_payload(const cq_conn *c) {
    const ngtcp2_transport_params *p = ngtcp2_conn_get_remote_transport_params(c->conn);
    if (!p || p->max_datagram_frame_size <= 3) return 0;
    size_t udp = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn);
    if (p->max_udp_payload_size && p->max_udp_payload_size < udp) udp = (size_t)p->max_udp_payload_size;
    // A short header (flags, the peer's connection id, up to 4 packet-number bytes), the
    // DATAGRAM frame's type and 2-byte length, and the AEAD tag.
    size_t overhead = 1 + ngtcp2_conn_get_dcid(c->conn)->datalen + 4 + 1 + 2 + 16;
    uint64_t room = udp > overhead ? udp - overhead : 0;
    uint64_t frame = p->max_datagram_frame_size - 3;  // the peer's limit counts type and length
    return room < frame ? room : frame;
}

uint32_t cq_conn_key(const cq_conn *c) { return c->key; }

uint64_t cq_conn_cwnd_left(const cq_conn *c) { return ngtcp2_conn_get_cwnd_left(c->conn); }

void cq_conn_queue_probe_frame(cq_conn *c) {
    // More connection credit than half any window: ngtcp2 then sends MAX_DATA, a frame it
    // retransmits, so its probe timeout covers the packet (DATAGRAM frames do not arm it).
    ngtcp2_conn_extend_max_offset(c->conn, 64u << 20);
}

const char *cq_strerror(int error) { return ngtcp2_strerror(error); }

int cq_conn_is_drop(int error) { return error == NGTCP2_ERR_DROP_CONN; }

int cq_conn_is_draining(int error) { return error == NGTCP2_ERR_DRAINING || error == NGTCP2_ERR_CLOSING; }

int cq_conn_is_datagram_refusal(int error) { return error == NGTCP2_ERR_INVALID_ARGUMENT; }

int cq_conn_is_idle_close(int error) { return error == NGTCP2_ERR_IDLE_CLOSE || error == NGTCP2_ERR_HANDSHAKE_TIMEOUT; }

void cq_conn_free(cq_conn *c) {
    if (!c) return;
    if (c->conn) ngtcp2_conn_del(c->conn);
    if (c->session) gnutls_deinit(c->session);
    chunk *k = c->head;
    while (k) {
        chunk *next = k->next;
        free(k);
        k = next;
    }
    free(c);
}
