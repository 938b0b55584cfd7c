#!/usr/bin/env bash
# Builds the binaries that ship, as the Dockerfile's build stage and CI's image test do:
#   mycelium      the node, its CLI and the CNI agent (links libsodium, libnl-3, libnl-route-3, libssl3)
#   mycelium-cni  the CNI plugin, which runs on hosts we do not control (libc only)
# Release mode, Swift runtime linked in statically (no Swift libraries needed at run time),
# stripped, into OUT/ (default .build-dist/). Its own scratch path keeps the debug build untouched.
# Usage: scripts/build-release.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build-dist}
scratch=${SCRATCH_PATH:-.build-release}
mkdir -p "$out"
for product in mycelium mycelium-cni; do
    swift build -c release --product "$product" --static-swift-stdlib --scratch-path "$scratch" >&2
    cp "$scratch/release/$product" "$out/$product.tmp"
    strip "$out/$product.tmp"
    mv "$out/$product.tmp" "$out/$product"
    echo "$out/$product: $(stat -c %s "$out/$product") bytes" >&2
done
