#!/usr/bin/env bash
# The container image as users meet it: its size and what the runtime stage adds to the base,
# the time from `docker run` of two nodes to the first ping over the overlay, the overlay
# round-trip time between the containers, and each node's resident memory.
# Needs a Docker engine (DOCKER_HOST as usual), root (nsenter, /proc) and the image, e.g.
#   make image && bench/image.sh            (default image mycelium:local)
# Usage: bench/image.sh [image]
set -euo pipefail
image=${1:-mycelium:local}
[ "$(id -u)" -eq 0 ] || { echo "run as root (nsenter into the containers)" >&2; exit 1; }
prefix=mycelium-bench-$$
cleanup() { docker rm -f "$prefix-a" "$prefix-b" >/dev/null 2>&1 || true; }
trap cleanup EXIT
run() {
    docker run -d --name "$prefix-$1" --cap-add NET_ADMIN --device /dev/net/tun \
        --sysctl net.ipv6.conf.all.disable_ipv6=0 -e MYCELIUM_DISABLE_PEER_DISCOVERY=true "${@:2}" "$image" >/dev/null
}
pid() { docker inspect -f '{{.State.Pid}}' "$prefix-$1"; }

echo "image $image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"
echo "layers (size, instruction; the last one is the base image):"
docker history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | awk -F'\t' '$1 != "0B" {print "  " $1 "\t" substr($2, 1, 90)}'

start=$(date +%s%N)
run a
ip_a=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$prefix-a")
run b -e "MYCELIUM_PEERS=tcp://$ip_a:9651"
address=""
for _ in $(seq 1 300); do
    address=$(docker exec "$prefix-a" mycelium inspect --json 2>/dev/null | sed -n 's/.*"address" *: *"\([^"]*\)".*/\1/p') && [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || { echo "node a never wrote its key" >&2; exit 1; }
reached=""
for _ in $(seq 1 300); do
    if nsenter --net="/proc/$(pid b)/ns/net" ping -6 -c 1 -W 1 "$address" >/dev/null 2>&1; then reached=yes; break; fi
    sleep 0.1
done
[ -n "$reached" ] || { echo "b never reached a over the overlay" >&2; exit 1; }
echo "docker run of two nodes → first overlay ping: $(( ($(date +%s%N) - start) / 1000000 )) ms"
nsenter --net="/proc/$(pid b)/ns/net" ping -6 -c 100 -i 0.01 -q "$address" | tail -1 | sed 's/^/overlay ping b → a (100 pings): /'
for node in a b; do echo "node $node: $(grep VmRSS "/proc/$(pid "$node")/status" | awk '{printf "%.1f MiB resident", $2 / 1024}')"; done
