#!/usr/bin/env bash
# QUIC against TCP peering on a lossy link: the case QUIC datagrams are for. A lost packet on a
# TCP peer link stalls every packet behind it until it is retransmitted (TCP in TCP); in QUIC
# DATAGRAM frames it is lost alone, and the overlay's own TCP flows recover it.
#
# Two namespaces joined by a veth losing LOSS (default 0.01, 1 %) of the packets each way, our
# release daemons peered over TCP, then over QUIC. For each: iperf3 single-stream TCP through
# the overlay, and ping (avg, p99, lost) idle and during that stream. The loss is
# ip6tables' `statistic` match on input (this VM's kernel has no netem, so no added delay: the
# link's RTT stays sub-millisecond, which understates what loss costs TCP peering on a WAN).
# Needs root. Usage: [LOSS=0.01] bench/lossy.sh [seconds per iperf3 run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
loss=${LOSS:-0.01}
source bench/lib.sh
bench_prepare
swift build -c release --product mycelium >/dev/null
bin=$PWD/.build/release/mycelium

bench_pair loss fd77:d
# On input, so the sender's socket sees no error (a drop on output fails UDP sends with EPERM).
for ns in "$a" "$b"; do
    ip netns exec "$ns" ip6tables -A INPUT -i "v$ns" -m statistic --mode random --probability "$loss" -j DROP
done
echo "link: veth, each way losing a fraction $loss of the packets"


# ping_stats NS TARGET COUNT: "avg p99 lost%" of COUNT pings 20 ms apart.
ping_stats() {
    ip netns exec "$1" ping -6 -c "$3" -i 0.02 -W 1 "$2" 2>/dev/null | awk '
        /time=/ { sub(/.*time=/, ""); sub(/ ms/, ""); r[++n] = $0 + 0 }
        /packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) lost = $i }
        END {
            if (!n) { print "- - " lost; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            s = 0; for (i = 1; i <= n; i++) s += r[i]
            k = int(n * 0.99); if (k < 1) k = 1
            printf "%.2f %.2f %s\n", s / n, r[k], lost
        }'
}

run_pair() { # label proto
    local label=$1 proto=$2
    ip netns exec "$b" "$bin" -k "$dir/b.key" --silent --disable-peer-discovery &
    local pb=$!
    ip netns exec "$a" "$bin" -k "$dir/a.key" --silent --disable-peer-discovery --peers "$proto://[fd77:d::2]:9651" &
    local pa=$!
    sleep 1
    local target
    target=$("$bin" inspect --json -k "$dir/b.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
    for _ in $(seq 30); do ip netns exec "$a" ping -6 -c 1 -W 1 "$target" >/dev/null 2>&1 && break; done
    local idle loaded gbit
    idle=$(ping_stats "$a" "$target" 200)
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    ip netns exec "$a" iperf3 -c "$target" -t "$secs" -J > "$dir/iperf.json" &
    local ip=$!
    sleep 1
    loaded=$(ping_stats "$a" "$target" $(( (secs - 2) * 50 )))
    wait "$ip" || true
    gbit=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$dir/iperf.json")
    read -r ia ip99 il <<< "$idle"
    read -r la lp99 ll <<< "$loaded"
    printf "%-6s tcp_1_stream_gbit=%s  ping_idle_avg_ms=%s p99=%s lost=%s  ping_loaded_avg_ms=%s p99=%s lost=%s\n" \
        "$label" "$gbit" "$ia" "$ip99" "$il" "$la" "$lp99" "$ll"
    kill "$pa" "$pb" 2>/dev/null || true; wait "$pa" "$pb" 2>/dev/null || true
}

run_pair tcp tcp
run_pair quic quic
