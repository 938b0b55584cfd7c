#!/usr/bin/env bash
# Overlay throughput and latency, side by side with the raw veth (the ceiling).
#
# Builds two namespaces joined by a veth pair, runs the release `mycelium` in both, and reports
# iperf3 TCP (1 and 4 streams), ping average and p99, and the daemons' CPU seconds; then the
# same over the bare veth. Needs root. Usage: bench/throughput.sh [seconds per iperf3 run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
./scripts/install-deps.sh
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
swift build -c release --product mycelium >/dev/null
bin=$PWD/.build/release/mycelium

a=bencha$$ b=benchb$$ dir=$(mktemp -d)
cleanup() {
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add va$$ netns "$a" type veth peer name vb$$ netns "$b"
ip -n "$a" addr add fd77:b::1/64 dev va$$ nodad; ip -n "$b" addr add fd77:b::2/64 dev vb$$ nodad
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set va$$ up; ip -n "$b" link set vb$$ up

measure() { # name target
    local name=$1 target=$2
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    local one four
    one=$(ip netns exec "$a" iperf3 -c "$target" -t "$secs" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    four=$(ip netns exec "$a" iperf3 -c "$target" -t "$secs" -P 4 -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    local pings
    pings=$(ip netns exec "$a" ping -6 -c 200 -i 0.01 -q "$target" 2>/dev/null | tail -1 || true)
    local rtts
    rtts=$(ip netns exec "$a" ping -6 -c 200 -i 0.01 "$target" 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n)
    local avg p99
    avg=$(echo "$rtts" | awk '{s+=$1} END {if (NR) printf "%.3f", s/NR}')
    p99=$(echo "$rtts" | awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int(NR*0.99)]}')
    printf "%-10s  tcp_1_stream_gbit=%s  tcp_4_streams_gbit=%s  ping_avg_ms=%s  ping_p99_ms=%s\n" "$name" "$one" "$four" "$avg" "$p99"
}

cpu_seconds() { # pid
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"
}

measure veth fd77:b::2

ip netns exec "$b" "$bin" -k "$dir/b.key" --silent &
pb=$!
ip netns exec "$a" "$bin" -k "$dir/a.key" --silent --peers "tcp://[fd77:b::2]:9651" &
pa=$!
sleep 1
target=$("$bin" inspect --json -k "$dir/b.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
for _ in $(seq 20); do ip netns exec "$a" ping -6 -c 1 -W 1 "$target" >/dev/null 2>&1 && break; done
measure mycelium "$target"
echo "mycelium daemon cpu_seconds: A=$(cpu_seconds "$(pgrep -P $pa || echo $pa)") B=$(cpu_seconds "$(pgrep -P $pb || echo $pb)")"
for other in yggdrasil wireguard-go nebula; do
    command -v "$other" >/dev/null && echo "note: $other is installed but not wired into this script yet" || true
done
