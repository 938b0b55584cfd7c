#!/usr/bin/env python3
"""A QUIC relay on aioquic, a QUIC implementation independent of ours, for the interop test
(Tests/IntegrationTests/QUICInteropTests.swift).

Node A dials this relay (aioquic is the server); for each such connection the relay dials
node B (aioquic is the client), as Mycelium dials: no ALPN, SNI dummy.mycelium, no
certificate check, DATAGRAM frames advertised. It opens one bidirectional stream towards B
when A's first stream bytes arrive and copies stream bytes and DATAGRAM frames both ways, so A
and B peer through it as if directly. It understands Mycelium only to count what it relays:
each DATAGRAM must hold exactly one frame (spec §3.6), whose type byte is counted.

On SIGTERM, or after --seconds, it writes its counts as JSON to --stats and exits.
"""
import argparse
import asyncio
import datetime
import json
import signal
import ssl

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, DatagramFrameReceived, HandshakeCompleted, StreamDataReceived
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# UDP payloads up to this size (aioquic's default is 1200): the nodes send up to 1504, so
# that a full-size data packet fits one DATAGRAM frame.
UDP_PAYLOAD = 1600

stats = {
    "server_handshakes": 0,     # A's connections to the relay
    "client_handshakes": 0,     # the relay's connections to B
    "stream_bytes_a_to_b": 0,
    "stream_bytes_b_to_a": 0,
    "datagrams_a_to_b": 0,
    "datagrams_b_to_a": 0,
    "data_datagrams": 0,        # DATAGRAMs holding a data packet (type 0)
    "control_datagrams": 0,     # ... a control packet (type 1)
    "bad_datagrams": 0,         # not starting with a version-1 frame header
    "max_datagram": 0,
    "datagrams_not_relayed": 0,
}


def count_datagram(data: bytes) -> None:
    stats["max_datagram"] = max(stats["max_datagram"], len(data))
    if len(data) < 5 or data[0] != 1 or data[1] not in (0, 1):
        stats["bad_datagrams"] += 1
    elif data[1] == 0:
        stats["data_datagrams"] += 1
    else:
        stats["control_datagrams"] += 1


def self_signed(path_cert: str, path_key: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quic-relay")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("quic-relay")]), critical=False)
            .sign(key, hashes.SHA256()))
    from cryptography.hazmat.primitives import serialization
    with open(path_cert, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(path_key, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


class Side(QuicConnectionProtocol):
    """One end of the relay; `other` is the connection on the other side."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.other = None
        self.stream_id = None
        self.waiting_stream = []     # bytes for this side before it is connected
        self.waiting_datagrams = []
        self.direction = ""          # "a_to_b" for what this side receives from A

    def send_stream(self, data: bytes) -> None:
        if self.stream_id is None:
            self.stream_id = self._quic.get_next_available_stream_id()
        self._quic.send_stream_data(self.stream_id, data)
        self.transmit()

    def send_datagram(self, data: bytes) -> None:
        try:
            self._quic.send_datagram_frame(data)
        except Exception:
            stats["datagrams_not_relayed"] += 1
            return
        self.transmit()

    def quic_event_received(self, event) -> None:
        if isinstance(event, HandshakeCompleted):
            stats["server_handshakes" if self.direction == "a_to_b" else "client_handshakes"] += 1
        elif isinstance(event, StreamDataReceived):
            if self.stream_id is None:
                self.stream_id = event.stream_id
            stats["stream_bytes_" + self.direction] += len(event.data)
            if self.other is None:
                self.waiting_stream.append(event.data)
            elif event.data:
                self.other.send_stream(event.data)
        elif isinstance(event, DatagramFrameReceived):
            stats["datagrams_" + self.direction] += 1
            count_datagram(event.data)
            if self.other is None:
                self.waiting_datagrams.append(event.data)
            else:
                self.other.send_datagram(event.data)
        elif isinstance(event, ConnectionTerminated):
            if self.other is not None:
                self.other.close()


def client_configuration() -> QuicConfiguration:
    return QuicConfiguration(is_client=True, alpn_protocols=None, max_datagram_frame_size=65536,
                             max_datagram_size=UDP_PAYLOAD, server_name="dummy.mycelium", verify_mode=ssl.CERT_NONE)


async def dial_b(a_side: Side, host: str, port: int) -> None:
    async with connect(host, port, configuration=client_configuration(), create_protocol=Side) as b_side:
        b_side.direction = "b_to_a"
        b_side.other = a_side
        a_side.other = b_side
        for data in a_side.waiting_stream:
            b_side.send_stream(data)
        for data in a_side.waiting_datagrams:
            b_side.send_datagram(data)
        a_side.waiting_stream.clear()
        a_side.waiting_datagrams.clear()
        await b_side.wait_closed()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, help="address to serve A on")
    parser.add_argument("--port", type=int, default=9651)
    parser.add_argument("--upstream", required=True, help="B's address")
    parser.add_argument("--upstream-port", type=int, default=9651)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()

    cert, key = f"{args.workdir}/relay.crt", f"{args.workdir}/relay.key"
    self_signed(cert, key)
    server_config = QuicConfiguration(is_client=False, alpn_protocols=None, max_datagram_frame_size=65536,
                                      max_datagram_size=UDP_PAYLOAD)
    server_config.load_cert_chain(cert, key)

    loop = asyncio.get_running_loop()
    tasks = set()

    def accepted(*a, **kw):
        side = Side(*a, **kw)
        side.direction = "a_to_b"
        task = loop.create_task(dial_b(side, args.upstream, args.upstream_port))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return side

    server = await serve(args.listen, args.port, configuration=server_config, create_protocol=accepted)
    done = asyncio.Event()
    # A parent may hand its blocked-signal mask down (the Swift test runner does).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    loop.add_signal_handler(signal.SIGTERM, done.set)
    with open(args.stats + ".ready", "w") as f:
        f.write("ready\n")
    try:
        await asyncio.wait_for(done.wait(), timeout=args.seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    with open(args.stats, "w") as f:
        json.dump(stats, f)


if __name__ == "__main__":
    asyncio.run(main())
