# Shared by the benchmarks that run daemons in two namespaces (throughput.sh, compare.sh,
# lossy.sh). Sourced, not run.

# bench_prepare: exits unless root; installs what the build needs, and iperf3.
bench_prepare() {
    [ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }
    ./scripts/install-deps.sh
    command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
}

# bench_pair TAG PREFIX: namespaces $a and $b (TAGa<pid>, TAGb<pid>) joined by a veth pair on
# PREFIX::/64 and a scratch directory $dir; on exit the background jobs are stopped and all of
# it removed.
bench_pair() {
    a=${1}a$$ b=${1}b$$ dir=$(mktemp -d)
    trap bench_cleanup EXIT
    veth_pair "$a" "$b" "$2"
}

bench_cleanup() {
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    veth_pair_del "$a" "$b"
    rm -rf "$dir"
}

# veth_pair A B PREFIX: namespaces A and B joined by a veth pair, PREFIX::1/64 in A and
# PREFIX::2/64 in B (no DAD), every link up. The peer ends are named after the namespaces.
veth_pair() {
    local a=$1 b=$2 prefix=$3
    ip netns add "$a"; ip netns add "$b"
    ip link add "v$a" netns "$a" type veth peer name "v$b" netns "$b"
    ip -n "$a" addr add "$prefix::1/64" dev "v$a" nodad; ip -n "$b" addr add "$prefix::2/64" dev "v$b" nodad
    for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
    ip -n "$a" link set "v$a" up; ip -n "$b" link set "v$b" up
}

# veth_pair_del A B: both namespaces (and so the pair) gone; quiet when already gone.
veth_pair_del() {
    ip netns del "$1" 2>/dev/null || true
    ip netns del "$2" 2>/dev/null || true
}

# cpu_seconds PID: user + system CPU seconds of a process so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"
}
