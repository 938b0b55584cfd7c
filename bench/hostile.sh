#!/usr/bin/env bash
# Attack classes against a daemon, measured: survives or not, RSS before/after, CPU seconds,
# lies written to its TUN, whether the honest neighbour stays reachable
# (Tests/IntegrationTests/HostilePeerBench.swift, the test suite's hostile peer).
#
#   bench/hostile.sh [MYCELIUM_BINARY]
#
# Without an argument it measures this tree's debug build; name another binary (say one built
# from an older commit) to compare. Needs root (network namespaces, TUN).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
./scripts/install-deps.sh
swift build --build-tests >/dev/null
binary="${1:-$PWD/.build/debug/mycelium}"
echo "binary: $binary"
MYCELIUM_HOSTILE_BENCH=1 MYCELIUM_LAB_BINARY="$binary" \
    swift test --skip-build --no-parallel --filter IntegrationTests.HostilePeerBench 2>&1 | grep -E "^BENCH|✘" || true
