#!/usr/bin/env python3
"""Writes the fuzz seed corpus from the protocol vectors (Tests/Fixtures/mycelium.json).

Each seed is one byte naming the target (FuzzTarget in Sources/MyceliumFuzz) and the target's
input: every frame vector alone and all of them as one stream (frames, router), the beacon,
decrypted payloads (an L3 packet, message-bus packets, an out-of-band report), the IPv6 packet
as read from the TUN, and CNI configurations. Usage: fuzz-seeds.py OUTPUT_DIR
"""
import json
import os
import sys

FRAMES, ROUTER, BEACON, PAYLOAD, TUN, CNI = range(6)

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
for name, content in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(content)
print(f"{len(seeds)} seeds in {out}")
