#!/usr/bin/env bash
# What an idle node costs: RSS (with its shared part: binary and libraries), anonymous memory
# and CPU of a hub with ten peers (real daemons in namespaces) over a quiet minute, then the
# memory per route after a peer announces 10 000 routes
# (Tests/IntegrationTests/IdleCostBench.swift). Targets: ≤ 30 MB RSS and ≤ 1 % of a core.
#
#   bench/idle.sh [MYCELIUM_BINARY]        # default: the shipped build (scripts/build-release.sh)
#   MYCELIUM_IDLE_SECONDS=300 bench/idle.sh
#
# Needs root (network namespaces, TUN).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
./scripts/install-deps.sh
if [ $# -eq 0 ]; then
    ./scripts/build-release.sh >/dev/null
    binary="$PWD/.build-dist/mycelium"
else
    binary="$1"
fi
swift build --build-tests >/dev/null
echo "binary: $binary"
MYCELIUM_IDLE_BENCH=1 MYCELIUM_LAB_BINARY="$binary" \
    swift test --skip-build --no-parallel --filter IntegrationTests.IdleCostBench 2>&1 | grep -E "^BENCH|✘" || true
