#!/usr/bin/env bash
# What sessions cost (docs/sessions.md), in-process on one core: time of a complete handshake
# (and of a pinned peer's key proof, docs/security.md),
# the datapath's cost per 1400-byte packet with the static scheme and with sessions, and the
# memory of the replay filter and of session state at 1000 peers. No root, no network.
#
#   bench/sessions.sh [mycelium-bench options, e.g. --packets 200000 --senders 1000]
#
# The network side (throughput with and without sessions between two daemons) is in
# bench/throughput.sh: rows "mycelium" (sessions, the default) and "myc-static".
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product mycelium-bench >/dev/null
exec .build/release/mycelium-bench sessions "$@"
