#!/usr/bin/env bash
# Two builds of mycelium, side by side: alternating single-stream iperf3 runs over the overlay
# between two namespaces (as bench/throughput.sh builds them), each round old then new, with
# Gbit/s, the two daemons' CPU seconds and Gbit per daemon CPU-second. Alternating rounds on
# one machine is how a change is told from this VM's noise (the raw veth varies by ±30 % from
# day to day); compare the rounds, not one number.
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [rounds=3] [seconds=5] [-- extra daemon options]
#
# Needs root (network namespaces, TUN) and iperf3 (installed if missing).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2"); shift 2
rounds=3 secs=5
[ $# -gt 0 ] && [ "$1" != "--" ] && { rounds=$1; shift; }
[ $# -gt 0 ] && [ "$1" != "--" ] && { secs=$1; shift; }
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
extra=("$@")
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
for b in "$old" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null

source "$(dirname "$0")/lib.sh"
a=cmpa$$ b=cmpb$$ dir=$(mktemp -d)
pids=()
stop_daemons() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_daemons
    veth_pair_del "$a" "$b"
    rm -rf "$dir"
}
trap cleanup EXIT
veth_pair "$a" "$b" fd77:d

# One round of one build: fresh daemons (same keys every time), one iperf3 run.
run() { # label binary
    local label=$1 bin=$2
    ip netns exec "$b" "$bin" -k "$dir/b.key" --silent "${extra[@]}" & pids+=($!)
    ip netns exec "$a" "$bin" -k "$dir/a.key" --silent --peers "tcp://[fd77:d::2]:9651" "${extra[@]}" & pids+=($!)
    local pb=${pids[0]} pa=${pids[1]}
    local target
    target=$("$bin" inspect --json -k "$dir/b.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
    local up=0
    for _ in $(seq 50); do
        ip netns exec "$a" ping -6 -c 1 -W 1 "$target" >/dev/null 2>&1 && { up=1; break; }
        sleep 0.2
    done
    [ "$up" = 1 ] || { echo "$label: no overlay route after 60 s" >&2; exit 1; }
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    local c0 c1 gbit
    c0=$(echo "$(cpu_seconds "$pa") + $(cpu_seconds "$pb")" | bc)
    gbit=$(ip netns exec "$a" iperf3 -c "$target" -t "$secs" -J \
        | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    c1=$(echo "$(cpu_seconds "$pa") + $(cpu_seconds "$pb")" | bc)
    python3 -c "c = $c1 - $c0; print('%-4s gbit=%s daemon_cpu_s=%.2f gbit_per_daemon_cpu_s=%.2f' % ('$label', '$gbit', c, $gbit * $secs / c))"
    stop_daemons
}

command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bc >/dev/null
"$old" generate-keys -k "$dir/a.key" >/dev/null
"$old" generate-keys -k "$dir/b.key" >/dev/null
echo "old: $old"
echo "new: $new"
for r in $(seq "$rounds"); do
    echo "round $r"
    run old "$old"
    run new "$new"
done
