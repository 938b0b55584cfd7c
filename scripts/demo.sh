#!/usr/bin/env bash
# The whole system on one machine, in about ten seconds: two "hosts" (network namespaces joined
# by a veth pair, standing in for two machines), a mycelium node with its CNI agent on each, and
# one "container" (a namespace) per host attached through the real mycelium-cni plugin exactly
# as a container runtime would run it (CNI_* environment, config on stdin). Then container 1
# pings container 2 across the overlay. Everything is removed at the end. Needs root.
# Usage: scripts/demo.sh [path to the directory holding mycelium and mycelium-cni]
set -euo pipefail
bin=${1:-$(cd "$(dirname "$0")/.." && pwd)/.build/debug}
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
for b in mycelium mycelium-cni; do [ -x "$bin/$b" ] || { echo "missing $bin/$b; run 'swift build' first" >&2; exit 1; }; done

tag=demo$$ dir=$(mktemp -d /tmp/mycelium-demo.XXXXXX)
h1=${tag}h1 h2=${tag}h2 c1=${tag}c1 c2=${tag}c2
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
conf() { # host
    printf '{"cniVersion":"1.0.0","name":"mycelium","type":"mycelium-cni","socket":"%s/%s/cni.sock"}' "$dir" "$1"
}
cni() { # command host container-namespace container-id
    conf "$2" | CNI_COMMAND=$1 CNI_CONTAINERID=$4 CNI_NETNS=/var/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH="$bin" "$bin/mycelium-cni"
}
cleanup() {
    set +e
    if [ -n "${added:-}" ]; then
        say "CNI DEL (as the runtime does when a container stops)"
        cni DEL h1 "$c1" ctr-1 && echo "ctr-1 released"
        cni DEL h2 "$c2" ctr-2 && echo "ctr-2 released"
    fi
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for ns in "$h1" "$h2" "$c1" "$c2"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$dir"
    echo "cleaned up"
}
trap cleanup EXIT

say "two hosts joined by a veth pair (fd99::1 and fd99::2), two empty containers"
for ns in "$h1" "$h2" "$c1" "$c2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add "${tag}a" netns "$h1" type veth peer name "${tag}b" netns "$h2"
ip -n "$h1" addr add fd99::1/64 dev "${tag}a" nodad; ip -n "$h1" link set "${tag}a" up
ip -n "$h2" addr add fd99::2/64 dev "${tag}b" nodad; ip -n "$h2" link set "${tag}b" up

say "a mycelium node with its CNI agent on each host (h2 peers with h1)"
for h in h1 h2; do mkdir -p "$dir/$h"; done
ip netns exec "$h1" "$bin/mycelium" -k "$dir/h1/key" --disable-peer-discovery \
    --cni --cni-socket "$dir/h1/cni.sock" --state-dir "$dir/h1/state" >"$dir/h1/log" 2>&1 &
ip netns exec "$h2" "$bin/mycelium" -k "$dir/h2/key" --disable-peer-discovery --peers "tcp://[fd99::1]:9651" \
    --cni --cni-socket "$dir/h2/cni.sock" --state-dir "$dir/h2/state" >"$dir/h2/log" 2>&1 &
for h in h1 h2; do
    for _ in $(seq 100); do grep -q "CNI agent ready" "$dir/$h/log" && break; sleep 0.1; done
    grep -q "CNI agent ready" "$dir/$h/log" || { cat "$dir/$h/log"; exit 1; }
    echo "$h: node $("$bin/mycelium" inspect -k "$dir/$h/key" | sed -n 's/^Address: //p'), containers get addresses in $(ip netns exec "${tag}$h" "$bin/mycelium" inspect --json -k "$dir/$h/key" | sed -n 's/.*"subnet" *: *"\([^"]*\)".*/\1/p')"
done

say "CNI ADD for one container on each host (stdout is the CNI result)"
cni ADD h1 "$c1" ctr-1; echo
cni ADD h2 "$c2" ctr-2; echo
added=1
a1=$(ip -n "$c1" -6 -o addr show dev eth0 scope global | awk '{print $4}' | cut -d/ -f1)
a2=$(ip -n "$c2" -6 -o addr show dev eth0 scope global | awk '{print $4}' | cut -d/ -f1)
echo "container 1 (on h1): $a1"
echo "container 2 (on h2): $a2"

say "container 1 pings container 2 across the overlay"
ok=0
for _ in $(seq 20); do
    if ip netns exec "$c1" ping -6 -c 1 -W 1 "$a2" >/dev/null 2>&1; then ok=1; break; fi
done
[ "$ok" = 1 ] || { echo "no route yet; logs:"; tail -5 "$dir/h1/log" "$dir/h2/log"; exit 1; }
ip netns exec "$c1" ping -6 -c 3 -i 0.2 "$a2"

say "each node's peer (mycelium peers list, through the node's REST API)"
for h in h1 h2; do echo "$h: $(ip netns exec "${tag}$h" "$bin/mycelium" peers list 2>/dev/null | tail -n +2 | head -1)"; done
