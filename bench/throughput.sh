#!/usr/bin/env bash
# Overlay throughput and latency, side by side with the raw veth (the ceiling).
#
# Builds two namespaces joined by a veth pair, runs the release `mycelium` in both, and reports
# iperf3 TCP (1 and 4 streams), ping average and p99, and the daemons' CPU seconds; the same over
# the bare veth (the ceiling) first, then mycelium as a private network (TLS 1.3 PSK peer links), and afterwards over yggdrasil, wireguard-go and nebula when
# they are installed (apt-get install yggdrasil wireguard-go wireguard-tools nebula).
# PROFILE=1 adds a perf profile of the sending daemon.
# Needs root. Usage: [PROFILE=1] bench/throughput.sh [seconds per iperf3 run]
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
    local rtts
    rtts=$(ip netns exec "$a" ping -c 200 -i 0.01 "$target" 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n)
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
if [ "${PROFILE:-0}" = 1 ]; then
    # Where the sender's CPU goes during one single-stream run: software cpu-clock samples
    # (hardware counters are often unavailable in VMs), top symbols demangled.
    command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    perf record -q -e cpu-clock -F 999 -g -o "$dir/perf.data" -p "$(pgrep -P $pa || echo $pa)" -- sleep "$secs" &
    perfpid=$!
    ip netns exec "$a" iperf3 -c "$target" -t "$secs" >/dev/null
    wait "$perfpid" || true
    echo "--- profile of daemon A (sender), self time, top 30 ---"
    perf report -i "$dir/perf.data" --no-children --fields overhead,sym --stdio -g none 2>/dev/null \
        | grep -E "^ +[0-9]" | head -30 | sed "s/ *$//" | swift demangle --simplified
fi
kill "$pa" "$pb" 2>/dev/null || true; wait "$pa" "$pb" 2>/dev/null || true

# The same two nodes as a private network: every peer link is TLS 1.3 (PSK) around the framing.
head -c 32 /dev/urandom > "$dir/net.key"
ip netns exec "$b" "$bin" -k "$dir/b.key" --silent --network-name bench --network-key-file "$dir/net.key" &
pb=$!
ip netns exec "$a" "$bin" -k "$dir/a.key" --silent --network-name bench --network-key-file "$dir/net.key" --peers "tcp://[fd77:b::2]:9651" &
pa=$!
sleep 1
for _ in $(seq 20); do ip netns exec "$a" ping -6 -c 1 -W 1 "$target" >/dev/null 2>&1 && break; done
measure mycel-tls "$target"
echo "mycelium (private network) daemon cpu_seconds: A=$(cpu_seconds "$(pgrep -P $pa || echo $pa)") B=$(cpu_seconds "$(pgrep -P $pb || echo $pb)")"
kill "$pa" "$pb" 2>/dev/null || true; wait "$pa" "$pb" 2>/dev/null || true

# The other overlays, side by side on the same veth, when installed (Debian: yggdrasil,
# wireguard-go + wireguard-tools, nebula). Each gets the same measurement; CPU is the daemons'.
if command -v yggdrasil >/dev/null; then
    for side in a b; do
        yggdrasil -genconf -json | python3 -c '
import json, sys
c = json.load(sys.stdin); side = sys.argv[1]
c["Listen"] = ["tcp://[fd77:b::2]:9001"] if side == "b" else []
c["Peers"] = ["tcp://[fd77:b::2]:9001"] if side == "a" else []
c["IfName"] = "ygg" + side; c["AdminListen"] = "none"; c["MulticastInterfaces"] = []
json.dump(c, open(sys.argv[2], "w"))' "$side" "$dir/ygg-$side.json"
    done
    ip netns exec "$b" yggdrasil -useconffile "$dir/ygg-b.json" -logto "$dir/ygg-b.log" & yb=$!
    ip netns exec "$a" yggdrasil -useconffile "$dir/ygg-a.json" -logto "$dir/ygg-a.log" & ya=$!
    target=$(yggdrasil -useconffile "$dir/ygg-b.json" -address)
    for _ in $(seq 30); do ip netns exec "$a" ping -c 1 -W 1 "$target" >/dev/null 2>&1 && break; sleep 0.2; done
    measure yggdrasil "$target"
    echo "yggdrasil daemon cpu_seconds: A=$(cpu_seconds "$ya") B=$(cpu_seconds "$yb")"
    kill "$ya" "$yb"; wait "$ya" "$yb" 2>/dev/null || true
fi
if command -v wireguard-go >/dev/null && command -v wg >/dev/null; then
    export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
    ip netns exec "$a" wireguard-go -f wga >"$dir/wg-a.log" 2>&1 & wa=$!
    ip netns exec "$b" wireguard-go -f wgb >"$dir/wg-b.log" 2>&1 & wb=$!
    for _ in $(seq 50); do ip -n "$a" link show wga >/dev/null 2>&1 && ip -n "$b" link show wgb >/dev/null 2>&1 && break; sleep 0.1; done
    (umask 077; wg genkey >"$dir/wa.key"; wg genkey >"$dir/wb.key")
    ip netns exec "$a" wg set wga private-key "$dir/wa.key" listen-port 51820 \
        peer "$(wg pubkey <"$dir/wb.key")" allowed-ips fd99::2/128 endpoint "[fd77:b::2]:51820"
    ip netns exec "$b" wg set wgb private-key "$dir/wb.key" listen-port 51820 \
        peer "$(wg pubkey <"$dir/wa.key")" allowed-ips fd99::1/128
    ip -n "$a" addr add fd99::1/64 dev wga nodad; ip -n "$a" link set wga up
    ip -n "$b" addr add fd99::2/64 dev wgb nodad; ip -n "$b" link set wgb up
    for _ in $(seq 30); do ip netns exec "$a" ping -c 1 -W 1 fd99::2 >/dev/null 2>&1 && break; sleep 0.2; done
    measure wireguard-go fd99::2
    echo "wireguard-go daemon cpu_seconds: A=$(cpu_seconds "$wa") B=$(cpu_seconds "$wb")"
    kill "$wa" "$wb"; wait "$wa" "$wb" 2>/dev/null || true
fi
if command -v nebula >/dev/null && command -v nebula-cert >/dev/null; then
    mkdir "$dir/neb"
    (cd "$dir/neb" && nebula-cert ca -name bench \
        && nebula-cert sign -name a -ip 10.99.0.1/24 && nebula-cert sign -name b -ip 10.99.0.2/24)
    for side in a b; do
        cat >"$dir/nebula-$side.yml" <<EOF
pki: {ca: $dir/neb/ca.crt, cert: $dir/neb/$side.crt, key: $dir/neb/$side.key}
static_host_map: {"10.99.0.2": ["[fd77:b::2]:4242"], "10.99.0.1": ["[fd77:b::1]:4242"]}
lighthouse: {am_lighthouse: false}
listen: {host: "[::]", port: 4242}
tun: {dev: neb$side}
logging: {level: error}
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, host: any}]
EOF
    done
    ip netns exec "$b" nebula -config "$dir/nebula-b.yml" >"$dir/neb-b.log" 2>&1 & nb=$!
    ip netns exec "$a" nebula -config "$dir/nebula-a.yml" >"$dir/neb-a.log" 2>&1 & na=$!
    for _ in $(seq 30); do ip netns exec "$a" ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
    measure nebula 10.99.0.2
    echo "nebula daemon cpu_seconds: A=$(cpu_seconds "$na") B=$(cpu_seconds "$nb")"
    kill "$na" "$nb"; wait "$na" "$nb" 2>/dev/null || true
fi
