#!/usr/bin/env bash
# Routing at scale: builds mycelium-sim in release mode and runs the 1000-node benchmark,
# reporting virtual convergence time, control traffic, wall time and peak memory. A run whose
# arguments are in bench/simulate-golden.tsv (arguments, tab, result) is compared with the results recorded there
# (everything but wall time and memory must match: a faster router must not route differently).
#
#   bench/simulate.sh                     # 1000 nodes, random, degree 4, seed 1
#   bench/simulate.sh --nodes 500 --topology random --degree 6 --seed 6 --cut-links 50 --cut-at 100 --duration 200 --latency-ms 5
#   bench/simulate.sh --nodes 300 --topology grid --cut-links 10
#   bench/simulate.sh --nodes 10000 --degree 3 --start-spread 30 --duration 35   # ~20 GB, ~30 min
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product mycelium-sim >/dev/null
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--nodes 1000 --topology random --degree 4 --seed 1)
timefile=$(mktemp)
outfile=$(mktemp)
trap 'rm -f "$timefile" "$outfile"' EXIT
if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$timefile" .build/release/mycelium-sim "${args[@]}" --json | tee "$outfile"
    grep -E "Elapsed|Maximum resident" "$timefile" | sed 's/^\s*/# /'
else
    .build/release/mycelium-sim "${args[@]}" --json | tee "$outfile"
fi
result=$(sed -E 's/, "wall_ms": [0-9]+, "peak_rss_mb": [0-9]+//' "$outfile")
if recorded=$(awk -F'\t' -v a="${args[*]}" '$1 == a { print $2 }' bench/simulate-golden.tsv) && [ -n "$recorded" ]; then
    if [ "$recorded" = "$result" ]; then
        echo "# golden: identical to the recorded results"
    else
        echo "# golden: DIFFERENT from the recorded results:"
        echo "$recorded"
        exit 1
    fi
fi
