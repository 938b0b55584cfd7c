#!/usr/bin/env bash
# Overlay throughput and latency, side by side with the raw veth (the ceiling).
#
# Builds two namespaces joined by a veth pair, runs the release `mycelium` in both, and reports
# iperf3 TCP (1 and 4 streams), ping average and p99; for every overlay also the daemons' CPU
# seconds during the TCP runs, Gbit per daemon CPU-second, and RSS before and at the peak of a
# 10 s UDP flood; for ours also allocations per packet (LD_PRELOAD counter, bench/malloc-count.c).
# Order: the bare veth (the ceiling); mycelium (sessions, the default), the static scheme only
# (--sessions false, as between Rust nodes), without TUN offloads, peered over QUIC instead of
# TCP, plain and as a private network (TLS 1.3 PSK peer links); then yggdrasil (default MTU and 1400), wireguard-go
# nebula and tinc when installed (OVERLAYS=1 installs them: yggdrasil wireguard-go wireguard-tools nebula tinc).
# PROFILE=1 adds a perf profile of each sending daemon of ours; QUICK=1 stops after our default
# configuration; PEER=quic makes that one (and every other of ours) peer over QUIC.
# Needs root. Usage: [PROFILE=1] [OVERLAYS=1] [QUICK=1] [PEER=quic] bench/throughput.sh [seconds per iperf3 run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
source bench/lib.sh
bench_prepare
if [ "${OVERLAYS:-0}" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends yggdrasil wireguard-go wireguard-tools nebula tinc >/dev/null
    # Debian starts a system-wide yggdrasil; the benchmark runs its own in the namespaces.
    systemctl disable --now yggdrasil >/dev/null 2>&1 || true
fi
swift build -c release --product mycelium >/dev/null
bin=$PWD/.build/release/mycelium

bench_pair bench fd77:b

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# A metric of a node (its metrics endpoint listens on [::1]:9490 in its namespace).
metric() { # namespace name labels
    ip netns exec "$1" python3 - "$2" "$3" <<'PY'
import sys, urllib.request
name, labels = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen("http://[::1]:9490/metrics", timeout=5).read().decode()
total = 0.0
for line in text.splitlines():
    if line.startswith(name + "{" + labels + "}") or (not labels and line.startswith(name + " ")):
        total += float(line.split()[-1])
print(int(total))
PY
}
allocations() { cut -d" " -f1 "$1" 2>/dev/null || echo 0; }

# iperf3 TCP 1 and 4 streams, ping avg/p99, and with the daemons' pids: their CPU seconds during
# the TCP runs, Gbit per daemon CPU-second, and their RSS before and at the peak of a 10 s UDP
# flood (as fast as iperf3 sends, 1300-byte datagrams).
measure() { # name target [pid-a pid-b]
    local name=$1 target=$2 pa=${3:-} pb=${4:-}
    local cpu0=0 cpu1=0
    [ -n "$pa" ] && cpu0=$(echo "$(cpu_seconds "$pa") + $(cpu_seconds "$pb")" | bc)
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    local one four
    one=$(ip netns exec "$a" iperf3 -c "$target" -t "$secs" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    four=$(ip netns exec "$a" iperf3 -c "$target" -t "$secs" -P 4 -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    [ -n "$pa" ] && cpu1=$(echo "$(cpu_seconds "$pa") + $(cpu_seconds "$pb")" | bc)
    local rtts
    rtts=$(ip netns exec "$a" ping -c 200 -i 0.01 "$target" 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n)
    local avg p99
    avg=$(echo "$rtts" | awk '{s+=$1} END {if (NR) printf "%.3f", s/NR}')
    p99=$(echo "$rtts" | awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int(NR*0.99)]}')
    printf "%-14s tcp_1_stream_gbit=%s  tcp_4_streams_gbit=%s  ping_avg_ms=%s  ping_p99_ms=%s\n" "$name" "$one" "$four" "$avg" "$p99"
    [ -n "$pa" ] || return 0
    local cpu gbit_per_cpu
    cpu=$(echo "$cpu1 - $cpu0" | bc)
    gbit_per_cpu=$(python3 -c "print('%.2f' % (($one + $four) * $secs / max($cpu, 0.01)))")
    local before_a before_b peak_a peak_b
    before_a=$(rss_kib "$pa"); before_b=$(rss_kib "$pb"); peak_a=$before_a; peak_b=$before_b
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
    ip netns exec "$a" timeout 20 iperf3 -c "$target" -u -b 0 -l 1300 -t 10 >/dev/null 2>&1 &
    local flood=$!
    for _ in $(seq 50); do
        kill -0 "$flood" 2>/dev/null || break
        peak_a=$(( $(rss_kib "$pa") > peak_a ? $(rss_kib "$pa") : peak_a ))
        peak_b=$(( $(rss_kib "$pb") > peak_b ? $(rss_kib "$pb") : peak_b ))
        sleep 0.25
    done
    wait "$flood" 2>/dev/null || true
    printf "%-14s daemon_cpu_seconds=%s  gbit_per_daemon_cpu_second=%s  rss_mb_before_flood=A:%d,B:%d  rss_mb_peak_flood=A:%d,B:%d\n" \
        "$name" "$cpu" "$gbit_per_cpu" $((before_a / 1024)) $((before_b / 1024)) $((peak_a / 1024)) $((peak_b / 1024))
}

command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bc >/dev/null
measure veth fd77:b::2

# The allocation counter (bench/malloc-count.c) preloaded into both daemons.
cc -O2 -shared -fPIC -o "$dir/malloc-count.so" bench/malloc-count.c -ldl -lpthread

# One pair of our daemons with the given extra options: the common measurement, then
# allocations per packet over one 5 s single-stream run (sender: per packet read from the TUN;
# receiver: per packet from its peer).
run_mycelium() { # label [options...]; PEER=quic peers over QUIC
    local label=$1; shift
    local peer=${PEER:-tcp}
    # Over QUIC, LAN discovery would add a TCP link beside it (discovery dials TCP): off then.
    [ "$peer" = quic ] && set -- "$@" --disable-peer-discovery
    MALLOC_COUNT_FILE=$dir/b.mc LD_PRELOAD=$dir/malloc-count.so ip netns exec "$b" "$bin" -k "$dir/b.key" --silent \
        --metrics-api-address "[::1]:9490" "$@" &
    local pb=$!
    MALLOC_COUNT_FILE=$dir/a.mc LD_PRELOAD=$dir/malloc-count.so ip netns exec "$a" "$bin" -k "$dir/a.key" --silent \
        --metrics-api-address "[::1]:9490" --peers "$peer://[fd77:b::2]:9651" "$@" &
    local pa=$!
    sleep 1
    target=$("$bin" inspect --json -k "$dir/b.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
    for _ in $(seq 20); do ip netns exec "$a" ping -6 -c 1 -W 1 "$target" >/dev/null 2>&1 && break; done
    measure "$label" "$target" "$pa" "$pb"
    ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.5
    local ma0 mb0 ta0 tb0 ma1 mb1 ta1 tb1
    ma0=$(allocations "$dir/a.mc"); mb0=$(allocations "$dir/b.mc")
    ta0=$(metric "$a" mycelium_datapath_packets 'direction="tun_in"'); tb0=$(metric "$b" mycelium_datapath_packets 'direction="peer_in"')
    ip netns exec "$a" iperf3 -c "$target" -t 5 >/dev/null
    sleep 0.3
    ma1=$(allocations "$dir/a.mc"); mb1=$(allocations "$dir/b.mc")
    ta1=$(metric "$a" mycelium_datapath_packets 'direction="tun_in"'); tb1=$(metric "$b" mycelium_datapath_packets 'direction="peer_in"')
    printf "%-14s allocations_per_packet=A:%s,B:%s  offload_splits=A:%s  offload_coalesced_segments=B:%s\n" "$label" \
        "$(python3 -c "print('%.2f' % (($ma1 - $ma0) / max($ta1 - $ta0, 1)))")" \
        "$(python3 -c "print('%.2f' % (($mb1 - $mb0) / max($tb1 - $tb0, 1)))")" \
        "$(metric "$a" mycelium_datapath_offload 'event="split"')" "$(metric "$b" mycelium_datapath_offload 'event="coalesced"')"
    if [ "${PROFILE:-0}" = 1 ]; then
        # Where the sender's CPU goes during one single-stream run: software cpu-clock samples
        # (hardware counters are often unavailable in VMs), top symbols demangled.
        command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
        ip netns exec "$b" iperf3 -s -1 -D -B "$target" >/dev/null 2>&1; sleep 0.3
        perf record -q -e cpu-clock -F 999 -g -o "$dir/perf.data" -p "$pa" -- sleep "$secs" &
        local perfpid=$!
        ip netns exec "$a" iperf3 -c "$target" -t "$secs" >/dev/null
        wait "$perfpid" || true
        echo "--- profile of $label daemon A (sender), self time, top 30 ---"
        perf report -i "$dir/perf.data" --no-children --fields overhead,sym --stdio -g none 2>/dev/null \
            | grep -E "^ +[0-9]" | head -30 | sed "s/ *$//" | swift demangle --simplified
    fi
    kill "$pa" "$pb" 2>/dev/null || true; wait "$pa" "$pb" 2>/dev/null || true
}

head -c 32 /dev/urandom > "$dir/net.key"
run_mycelium mycelium
# QUICK=1: our default configuration only (for a profile or a before/after of one change).
[ "${QUICK:-0}" = 1 ] && exit 0
# The static scheme only (as between Rust nodes): no sessions, the nonce filter still on.
run_mycelium myc-static --sessions false
run_mycelium myc-no-offload --tun-offload false
# Peered over QUIC: control on a stream, data packets in DATAGRAM frames (docs/transports.md).
PEER=quic run_mycelium myc-quic
# The same two nodes as a private network: every peer link is TLS 1.3 (PSK) around the framing.
run_mycelium mycel-tls --network-name bench --network-key-file "$dir/net.key"
run_mycelium mycel-tls-no-off --tun-offload false --network-name bench --network-key-file "$dir/net.key"

# The other overlays, side by side on the same veth, when installed (Debian: yggdrasil,
# wireguard-go + wireguard-tools, nebula). Each gets the same measurement; CPU is the daemons'.
run_yggdrasil() { # label [IfMTU]
    local label=$1 mtu=${2:-}
    for side in a b; do
        yggdrasil -genconf -json | python3 -c '
import json, sys
c = json.load(sys.stdin); side = sys.argv[1]
c["Listen"] = ["tcp://[fd77:b::2]:9001"] if side == "b" else []
c["Peers"] = ["tcp://[fd77:b::2]:9001"] if side == "a" else []
c["IfName"] = "ygg" + side; c["AdminListen"] = "none"; c["MulticastInterfaces"] = []
if sys.argv[3]: c["IfMTU"] = int(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"))' "$side" "$dir/ygg-$side.json" "$mtu"
    done
    ip netns exec "$b" yggdrasil -useconffile "$dir/ygg-b.json" -logto "$dir/ygg-b.log" & local yb=$!
    ip netns exec "$a" yggdrasil -useconffile "$dir/ygg-a.json" -logto "$dir/ygg-a.log" & local ya=$!
    target=$(yggdrasil -useconffile "$dir/ygg-b.json" -address)
    for _ in $(seq 30); do ip netns exec "$a" ping -c 1 -W 1 "$target" >/dev/null 2>&1 && break; sleep 0.2; done
    measure "$label" "$target" "$ya" "$yb"
    kill "$ya" "$yb"; wait "$ya" "$yb" 2>/dev/null || true
}
if command -v yggdrasil >/dev/null; then
    run_yggdrasil yggdrasil
    run_yggdrasil ygg-mtu1400 1400
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
    measure wireguard-go fd99::2 "$wa" "$wb"
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
    measure nebula 10.99.0.2 "$na" "$nb"
    kill "$na" "$nb"; wait "$na" "$nb" 2>/dev/null || true
fi
if command -v tincd >/dev/null; then
    # tinc 1.0 (Debian's), its defaults (data over UDP, Blowfish-CBC + SHA-1): the issue's
    # latency reference. Router mode, one /128 each.
    for side in a b; do
        mkdir -p "$dir/tinc-$side/hosts"
        addr=fd98::1; peer=b; [ "$side" = b ] && { addr=fd98::2; peer=a; }
        printf 'Name = %s\nInterface = tinc%s\nMode = router\nDeviceType = tun\nAddressFamily = ipv6\nConnectTo = %s\n' \
            "$side" "$side" "$peer" >"$dir/tinc-$side/tinc.conf"
        printf '#!/bin/sh\nip addr add %s/64 dev "$INTERFACE" nodad\nip link set "$INTERFACE" up\n' "$addr" >"$dir/tinc-$side/tinc-up"
        chmod +x "$dir/tinc-$side/tinc-up"
        printf 'Address = fd77:b::%s\nSubnet = %s/128\n' "${addr##*:}" "$addr" >"$dir/tinc-$side/hosts/$side"
        tincd -c "$dir/tinc-$side" -K 2048 </dev/null >/dev/null 2>&1
    done
    cp "$dir/tinc-a/hosts/a" "$dir/tinc-b/hosts/a"; cp "$dir/tinc-b/hosts/b" "$dir/tinc-a/hosts/b"
    ip netns exec "$b" tincd -c "$dir/tinc-b" -D --pidfile="$dir/tinc-b.pid" --logfile="$dir/tinc-b.log" & tb=$!
    ip netns exec "$a" tincd -c "$dir/tinc-a" -D --pidfile="$dir/tinc-a.pid" --logfile="$dir/tinc-a.log" & ta=$!
    for _ in $(seq 50); do ip netns exec "$a" ping -c 1 -W 1 fd98::2 >/dev/null 2>&1 && break; sleep 0.2; done
    measure tinc fd98::2 "$ta" "$tb"
    kill "$ta" "$tb"; wait "$ta" "$tb" 2>/dev/null || true
fi
