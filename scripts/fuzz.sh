#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder and of the router's handling of decoded TLVs
# (Sources/MyceliumFuzz) with libFuzzer, from the Swift toolchain (-sanitize=fuzzer).
#
#   scripts/fuzz.sh [SECONDS]   (default 600; `make fuzz`)
#   FUZZ_RUNS=N scripts/fuzz.sh  N inputs with a fixed seed instead: a repeatable short run
#                                (`make test`), so a run that passed here passes in CI too
#
# The corpus grows in .build-fuzz/corpus, seeded from the protocol vectors (scripts/fuzz-seeds.py).
# A crash or timeout stops the run and writes the input to Tests/Fuzz/crashers/: commit it, and
# the regression test (Tests/MyceliumCoreTests/FuzzRegressionTests.swift) replays it for ever.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-600}}"
scratch=.build-fuzz
swift build --scratch-path "$scratch" --product mycelium-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -DFUZZING 2>&1 | grep -v "^\[" || true
binary="$(swift build --scratch-path "$scratch" --product mycelium-fuzz --show-bin-path \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -DFUZZING)/mycelium-fuzz"
[ -x "$binary" ] || { echo "fuzz build failed" >&2; exit 1; }
mkdir -p "$scratch/corpus" "$scratch/seeds" Tests/Fuzz/crashers
python3 scripts/fuzz-seeds.py "$scratch/seeds"
if [ -n "${FUZZ_RUNS:-}" ]; then
    # A fresh corpus each time: the same seed, inputs and binary give the same run.
    rm -rf "$scratch/corpus"; mkdir -p "$scratch/corpus"
    budget=(-runs="$FUZZ_RUNS" -seed=1)
else
    budget=(-max_total_time="$seconds")
fi
# -timeout: one input may take at most 10 s (a stall is a bug too); -rss_limit_mb bounds memory.
"$binary" "$scratch/corpus" "$scratch/seeds" Tests/Fuzz/crashers \
    "${budget[@]}" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
    -artifact_prefix=Tests/Fuzz/crashers/ -print_final_stats=1 2>&1 | tail -n 25
