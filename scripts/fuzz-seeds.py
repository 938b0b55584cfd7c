#!/usr/bin/env python3
"""Writes the fuzz seed corpus from the protocol vectors (Tests/Fixtures/mycelium.json).

Each seed is one byte naming the target (FuzzTarget in Sources/MyceliumFuzz) and the target's
input: every frame vector alone and all of them as one stream (frames, router), the beacon,
decrypted payloads (an L3 packet, message-bus packets, an out-of-band report), the IPv6 packet
as read from the TUN, CNI configurations, a DNS SRV answer with glue (compressed names), and the
message exchange as a record stream for the message stack. Usage: fuzz-seeds.py OUTPUT_DIR
"""
import json
import os
import sys

FRAMES, ROUTER, BEACON, PAYLOAD, TUN, CNI, DNS, MESSAGES = range(8)

here = os.path.dirname(os.path.abspath(__file__))
vectors = json.load(open(os.path.join(here, "..", "Tests", "Fixtures", "mycelium.json")))["vectors"]
by_id = {v["id"]: v for v in vectors}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
seeds = {}

frames = [bytes.fromhex(v["frame_hex"]) for v in vectors if "frame_hex" in v]
for i, f in enumerate(frames):
    seeds[f"frame-{i}"] = bytes([FRAMES]) + f
    seeds[f"router-{i}"] = bytes([ROUTER]) + f
seeds["frames-all"] = bytes([FRAMES]) + b"".join(frames)
seeds["router-all"] = bytes([ROUTER]) + b"".join(frames) * 3
seeds["beacon"] = bytes([BEACON]) + bytes.fromhex(by_id["discovery.beacon"]["beacon_hex"])
data = by_id["data.encrypted_l3_packet"]
seeds["payload-l3"] = bytes([PAYLOAD]) + bytes.fromhex(data["plaintext_hex"])
seeds["tun-packet"] = bytes([TUN]) + bytes.fromhex(data["ipv6_packet_hex"])
message = by_id["message.transfer_example"]
for k in ("init_hex", "chunk0_hex", "done_hex", "init_ack_hex", "read_hex", "abort_hex"):
    seeds["payload-message-" + k[:-4]] = bytes([PAYLOAD, 1, 1, 0, 0]) + bytes.fromhex(message[k])
# An out-of-band report: original destination, IPv6 header (reporter prefix:: -> source), ICMPv6, payload.
ipv6 = bytes.fromhex(data["ipv6_packet_hex"])
src, dst = ipv6[8:24], ipv6[24:40]
oob_ip = bytes([0x60, 0, 0, 0, 0, 8 + 60, 58, 64]) + dst[:8] + bytes(8) + src
seeds["payload-oob"] = bytes([PAYLOAD, 1, 2, 0, 0]) + dst + oob_ip + bytes([3, 0, 0, 0, 0, 0, 0, 0]) + bytes.fromhex(data["raw_data_hex"])
seeds["cni-config"] = bytes([CNI]) + json.dumps({"cniVersion": "1.0.0", "name": "mycelium", "type": "mycelium-cni",
                                                  "mtu": 1400, "route": "overlay"}).encode()
seeds["cni-agent"] = bytes([CNI]) + json.dumps({"command": "ADD", "containerID": "abc", "ifname": "eth0",
                                                 "netns": "/var/run/netns/x", "mtu": 1400}).encode()


def dns_name(text):
    return b"".join(bytes([len(l)]) + l.encode() for l in text.split(".")) + b"\0"


def rr(owner, rtype, ttl, rdata):
    return owner + rtype.to_bytes(2, "big") + b"\0\1" + ttl.to_bytes(4, "big") + len(rdata).to_bytes(2, "big") + rdata


srv_owner = "_mycelium._tcp.mycelium-peers.kube-system.svc.cluster.local"
target = dns_name("10-0-0-1")[:-1] + b"\xc0\x1b"  # "10-0-0-1." + pointer to "mycelium-peers…" in the question
answer = rr(b"\xc0\x0c", 33, 30, b"\0\0\0\x64\x25\xb3" + target)
glue = rr(dns_name("10-0-0-1.mycelium-peers.kube-system.svc.cluster.local"), 1, 30, bytes([10, 0, 0, 1]))
glue6 = rr(dns_name("10-0-0-1.mycelium-peers.kube-system.svc.cluster.local"), 28, 30, bytes(15) + b"\1")
header = bytes.fromhex("00078180") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + (0).to_bytes(2, "big") + (2).to_bytes(2, "big")
# The message stack: the spec's exchange as records (control byte 0 = received, length, packet),
# a push (3), a pop (4), time (5), our own acknowledgements fed back (7).
records = b""
for k in ("init_hex", "chunk0_hex", "done_hex", "abort_hex", "init_hex", "read_hex"):
    packet = bytes.fromhex(message[k])
    records += bytes([0, len(packet)]) + packet
records += bytes([3, 5]) + b"hello" + bytes([7, 0, 5, 0, 7, 0, 4, 0, 6, 0])
seeds["messages-exchange"] = bytes([MESSAGES]) + records
seeds["dns-srv"] = bytes([DNS]) + header + dns_name(srv_owner) + b"\0\x21\0\1" + answer + glue + glue6
for name, content in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(content)
print(f"{len(seeds)} seeds in {out}")
