#!/usr/bin/env bash
# Peer discovery through DNS, measured: N nodes in namespaces on a routed underlay, dnsmasq
# serving SRV records, no --peers and no LAN discovery. Prints the time from the last node's
# start to a full mesh (every node routes to every other /64) and the DNS queries per node per
# minute at steady state (Tests/IntegrationTests/PeerDNSBench.swift).
#
#   bench/peer-dns.sh [NODES...]        default: 5 20; TTL of the records: PEER_DNS_TTL (30 s)
#
# Needs root (network namespaces, TUN). Takes about 1.5 minutes per size.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
./scripts/install-deps.sh
./scripts/install-test-tools.sh >/dev/null
swift build --build-tests >/dev/null
MYCELIUM_PEER_DNS_BENCH=1 MYCELIUM_PEER_DNS_NODES="${*:-5 20}" MYCELIUM_PEER_DNS_TTL="${PEER_DNS_TTL:-30}" \
    swift test --skip-build --no-parallel --filter IntegrationTests.PeerDNSBench 2>&1 | grep -E "^BENCH|✘" || true
