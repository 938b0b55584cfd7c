#!/usr/bin/env bash
# The message bus between two real daemons on loopback (no TUN needed: messages travel without
# one): messages per second and one-way latency of 1 KiB and 1 MiB messages, and the memory
# held with 10 000 unread messages (bench/messages.py).
#
#   bench/messages.sh [MYCELIUM_BINARY]     # default: the shipped build (scripts/build-release.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    log=$(mktemp)
    ./scripts/build-release.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
    rm -f "$log"
    binary="$PWD/.build-dist/mycelium"
else
    binary="$1"
fi
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
common=(--no-tun --disable-peer-discovery)
"$binary" -k "$work/a.key" "${common[@]}" -t 19751 --api-addr 127.0.0.1:18901 --jsonrpc-addr 127.0.0.1:18902 \
    >"$work/a.log" 2>&1 &
pids+=($!)
"$binary" -k "$work/b.key" "${common[@]}" -t 19752 --api-addr 127.0.0.1:18911 --jsonrpc-addr 127.0.0.1:18912 \
    --metrics-api-address 127.0.0.1:18913 --peers tcp://127.0.0.1:19751 >"$work/b.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q "node started" "$work/a.log" && grep -q "node started" "$work/b.log" && break
    sleep 0.1
done
echo "binary: $binary"
python3 bench/messages.py 127.0.0.1:18901 127.0.0.1:18911 127.0.0.1:18913 "${pids[1]}"
