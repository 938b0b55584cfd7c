#!/usr/bin/env bash
# Builds the mycelium-cni plugin for hosts we do not control: release, Swift runtime linked in
# statically (--static-swift-stdlib), stripped. It links no C library beyond libc and no
# Foundation; its own scratch path keeps the daemon's build untouched. Prints size and ldd.
# Usage: scripts/build-cni.sh [output path]   (default .build-cni/mycelium-cni)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build-cni/mycelium-cni}
swift build -c release --product mycelium-cni --static-swift-stdlib --scratch-path .build-cni >&2
mkdir -p "$(dirname "$out")"
cp .build-cni/release/mycelium-cni "$out.tmp"
strip "$out.tmp"
mv "$out.tmp" "$out"
echo "plugin: $out, $(stat -c %s "$out") bytes"
ldd "$out" || true
