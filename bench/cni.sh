#!/usr/bin/env bash
# CNI ADD and DEL latency as a runtime sees it: the static plugin binary exec'd with CNI_*
# variables against the agent of a release node in a namespace, N times (default 100) on a
# fresh container namespace each; prints p50/p99 in milliseconds, and the plugin's size.
# Needs root. Usage: bench/cni.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
./scripts/install-deps.sh
swift build -c release --product mycelium >/dev/null
./scripts/build-cni.sh .build-cni/mycelium-cni >/dev/null
bin=$PWD/.build/release/mycelium plugin=$PWD/.build-cni/mycelium-cni
h=cnibench$$ dir=$(mktemp -d)
cleanup() {
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in $(ip netns list | awk '{print $1}' | grep "^$h"); do ip netns del "$ns"; done
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$h"; ip -n "$h" link set lo up
ip netns exec "$h" "$bin" -k "$dir/key" --silent --disable-peer-discovery --cni --cni-socket "$dir/cni.sock" --state-dir "$dir/state" &
for _ in $(seq 100); do [ -S "$dir/cni.sock" ] && break; sleep 0.1; done
conf="{\"cniVersion\":\"1.0.0\",\"name\":\"mycelium\",\"type\":\"mycelium-cni\",\"socket\":\"$dir/cni.sock\"}"
ns_ms() { echo $(( ($2 - $1) / 1000 )); }  # start end (ns) -> microseconds
: >"$dir/add"; : >"$dir/del"
for i in $(seq "$runs"); do
    ip netns add "${h}c$i"
    t0=$(date +%s%N)
    echo "$conf" | CNI_COMMAND=ADD CNI_CONTAINERID=bench-$i CNI_NETNS=/var/run/netns/${h}c$i CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin "$plugin" >/dev/null
    t1=$(date +%s%N)
    echo "$conf" | CNI_COMMAND=DEL CNI_CONTAINERID=bench-$i CNI_NETNS=/var/run/netns/${h}c$i CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin "$plugin" >/dev/null
    t2=$(date +%s%N)
    ns_ms "$t0" "$t1" >>"$dir/add"; ns_ms "$t1" "$t2" >>"$dir/del"
    ip netns del "${h}c$i"
done
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p+0.999); if (i<1) i=1; printf "%.1f", a[i]/1000}'; }
echo "cni ADD ms: p50=$(pct "$dir/add" 0.5) p99=$(pct "$dir/add" 0.99)   DEL ms: p50=$(pct "$dir/del" 0.5) p99=$(pct "$dir/del" 0.99)   ($runs runs)"
echo "plugin: $(stat -c %s "$plugin") bytes (static Swift runtime, stripped); needs: $(ldd "$plugin" | awk '{print $1}' | tr '\n' ' ')"
