#!/usr/bin/env bash
# Routing at scale: builds mycelium-sim in release mode and runs the 1000-node benchmark,
# reporting virtual convergence time, control traffic, wall time and peak memory.
#
#   bench/simulate.sh                     # 1000 nodes, random, degree 4, seed 1
#   bench/simulate.sh --nodes 300 --topology grid --cut-links 10
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product mycelium-sim >/dev/null
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--nodes 1000 --topology random --degree 4 --seed 1)
timefile=$(mktemp)
trap 'rm -f "$timefile"' EXIT
if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$timefile" .build/release/mycelium-sim "${args[@]}" --json
    grep -E "Elapsed|Maximum resident" "$timefile" | sed 's/^\s*/# /'
else
    .build/release/mycelium-sim "${args[@]}" --json
fi
