#pragma once
// A thin C layer over ngtcp2 0.12 (Debian 12) with its GnuTLS crypto backend: QUIC v1
// connections for Mycelium peers (spec §3.6). It hides what Swift cannot import (the
// `*_versioned` macros, the callback table, GnuTLS session and certificate setup) and keeps
// the one thing ngtcp2 requires the application to hold: stream bytes until they are
// acknowledged. No sockets, no clock: the caller passes packets, addresses and time in, and
// sends what `cq_conn_write*` produce. One connection is used by one thread at a time.

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

/// Credentials shared by every connection of an endpoint: a self-signed ECDSA P-256
/// certificate for the server side (made at creation, as Rust Mycelium does per start) and
/// client credentials that verify nothing (spec §3.6: the peer's key is checked by the
/// protocol above, not by the certificate).
typedef struct cq_tls cq_tls;

/// Creates credentials whose certificate carries `subject_alt_name` (the router id's text
/// form). Returns NULL and a message in `err` on failure.
cq_tls *cq_tls_new(const char *subject_alt_name, char *err, size_t errlen);

/// Bytes of the secret stateless reset tokens are derived from.
#define CQ_RESET_SECRET_LEN 32
/// A stateless reset answers only a packet of at least this size, and is one byte smaller.
#define CQ_RESET_MIN_TRIGGER 43
/// Sets the secret the stateless reset tokens of later connections are derived from (else a
/// random one per `cq_tls`). One derived from the node key makes the tokens survive a restart,
/// so a peer's packets for a connection of before the restart can be answered with a reset.
void cq_tls_set_reset_secret(cq_tls *tls, const uint8_t *secret, size_t len);
/// Writes a stateless reset (RFC 9000 §10.3) for a packet of `received` bytes addressed to the
/// connection id `dcid`: its size, 0 when that packet is too small to answer, or negative.
ssize_t cq_write_stateless_reset(const cq_tls *tls, const uint8_t *dcid, size_t dcidlen, size_t received, uint8_t *out,
                                 size_t cap);
void cq_tls_free(cq_tls *tls);

/// What a connection reports while it reads packets or handles its timer. `ctx` is passed
/// back unchanged. Data pointers are valid only during the call.
typedef struct cq_callbacks {
    void *ctx;
    void (*handshake_completed)(void *ctx);
    void (*stream_open)(void *ctx, int64_t stream_id);
    void (*stream_data)(void *ctx, int64_t stream_id, const uint8_t *data, size_t len, int fin);
    void (*datagram)(void *ctx, const uint8_t *data, size_t len);
} cq_callbacks;

/// Transport settings; zero fields take the defaults of spec §3.6.
typedef struct cq_params {
    uint64_t idle_timeout_ns;       // 60 s
    uint64_t handshake_timeout_ns;  // 10 s
    uint64_t stream_window;         // 10 MiB
    uint64_t connection_window;     // 16 MiB
    uint32_t max_udp_payload;       // 1452: the largest UDP payload we send
} cq_params;

/// Length of every connection id this endpoint issues: a 4-byte connection key (the same for
/// all ids of one connection, chosen unique by the caller, for demultiplexing) and 4 random
/// bytes. 8 bytes, as quinn's: every byte of a short header is taken from the datagram room.
#define CQ_CID_LEN 8
#define CQ_CONN_KEY_LEN 4

typedef struct cq_conn cq_conn;

/// A client connection to `remote`, sending from `local`. Error codes are ngtcp2's (< 0).
cq_conn *cq_conn_client(cq_tls *tls, uint32_t conn_key, const struct sockaddr *local, socklen_t locallen,
                        const struct sockaddr *remote, socklen_t remotelen, const cq_params *params,
                        cq_callbacks callbacks, uint64_t now_ns, int *error);

/// Whether `pkt` is a client Initial a server may accept (0), or why not (< 0).
int cq_accept(const uint8_t *pkt, size_t len);

/// The server side of a connection whose first packet is the client Initial `pkt` (checked
/// with `cq_accept`). The caller then passes `pkt` to `cq_conn_read` as any other packet.
cq_conn *cq_conn_server(cq_tls *tls, uint32_t conn_key, const struct sockaddr *local, socklen_t locallen,
                        const struct sockaddr *remote, socklen_t remotelen, const uint8_t *pkt, size_t len,
                        const cq_params *params, cq_callbacks callbacks, uint64_t now_ns, int *error);

/// The destination connection id of a packet: for a short header, the first `CQ_CID_LEN`
/// bytes after the flags (we only issue ids of that length). 0, or < 0 when malformed.
int cq_packet_dcid(const uint8_t *pkt, size_t len, uint8_t *dcid, size_t *dcidlen, int *is_long_header);

/// Feeds one received UDP payload, with the address it came from. < 0: the connection is
/// over (close it).
int cq_conn_read(cq_conn *conn, const struct sockaddr *local, socklen_t locallen,
                 const struct sockaddr *remote, socklen_t remotelen, const uint8_t *pkt, size_t len,
                 uint64_t now_ns);

/// Writes the next packet into `out` (stream bytes first, then acknowledgements and control
/// frames). Returns its length, 0 when there is nothing (more) to send, < 0 on a fatal error
/// (also when the peer reset or stopped our stream: control traffic cannot go on).
ssize_t cq_conn_write(cq_conn *conn, uint8_t *out, size_t cap, uint64_t now_ns);

/// Writes `data` as one DATAGRAM frame in a packet. `accepted` is set when it went into the
/// packet; 0 returned with `accepted` unset means congestion or pacing holds it back.
/// NGTCP2_ERR_INVALID_ARGUMENT (< 0) when it can never fit (too large or the peer did not
/// advertise datagrams): the caller drops it and the connection stays.
ssize_t cq_conn_write_datagram(cq_conn *conn, uint8_t *out, size_t cap, const uint8_t *data, size_t len,
                               int *accepted, uint64_t now_ns);

/// Opens our bidirectional stream; its id in `stream_id`. < 0 if the peer allows none yet.
int cq_conn_open_stream(cq_conn *conn, int64_t *stream_id);

/// Queues `len` bytes on `stream_id` (copied; kept until acknowledged). < 0 when more than
/// `limit` bytes would be waiting (unsent or unacknowledged): the caller drops the peer.
int cq_conn_stream_send(cq_conn *conn, int64_t stream_id, const uint8_t *data, size_t len, size_t limit);

/// After a write: 1 and the address when the peer's moved (ngtcp2 validated a new path, as
/// after a NAT rebinding); the packet just written goes there.
int cq_conn_take_moved_remote(cq_conn *conn, struct sockaddr_storage *out, socklen_t *len);

/// Tells ngtcp2 a batch of writes is done, so that it paces the next (after every write loop).
void cq_conn_update_tx_time(cq_conn *conn, uint64_t now_ns);

/// Bytes queued on the stream and not yet acknowledged.
size_t cq_conn_stream_buffered(const cq_conn *conn);

/// When `cq_conn_handle_expiry` must next run (monotonic ns; UINT64_MAX: never).
uint64_t cq_conn_expiry(const cq_conn *conn);
/// < 0: the connection timed out or failed (close it without sending).
int cq_conn_handle_expiry(cq_conn *conn, uint64_t now_ns);

/// A CONNECTION_CLOSE packet to send before freeing (application error `code`).
ssize_t cq_conn_write_close(cq_conn *conn, uint8_t *out, size_t cap, uint64_t code, uint64_t now_ns);

int cq_conn_handshake_completed(const cq_conn *conn);
/// RFC 5705 keying material of the TLS session (no context), the same at both ends once the
/// handshake has completed; 0 on success, -1 before it or on failure.
int cq_conn_export_keying_material(const cq_conn *conn, const char *label, size_t label_len, uint8_t *out, size_t out_len);
/// The largest DATAGRAM payload that fits one packet on this path and that the peer accepts
/// (0: the peer takes none, or the handshake has not told yet). ngtcp2 silently never sends
/// a larger one, so callers size theirs against this.
uint64_t cq_conn_max_datagram_payload(const cq_conn *conn);
/// Bytes the congestion window lets out now.
uint64_t cq_conn_cwnd_left(const cq_conn *conn);
/// Makes the next packet carry a frame ngtcp2 retransmits (MAX_DATA with more credit), so that
/// its probe timeout runs while that packet is in flight.
void cq_conn_queue_probe_frame(cq_conn *conn);
/// The connection key its ids carry.
uint32_t cq_conn_key(const cq_conn *conn);
/// Why the connection ended, when it was closed by the peer or failed in the library.
const char *cq_strerror(int error);
/// Whether the connection must be dropped without a CONNECTION_CLOSE.
int cq_conn_is_drop(int error);
/// Whether the error means the peer closed the connection.
int cq_conn_is_draining(int error);
/// Whether `cq_conn_write_datagram`'s error means only that this datagram can never be sent.
int cq_conn_is_datagram_refusal(int error);
/// Whether the last failure was the idle timeout or the handshake timeout.
int cq_conn_is_idle_close(int error);

void cq_conn_free(cq_conn *conn);
