# Shared by the benchmarks that run daemons in two namespaces (throughput.sh, compare.sh).
# Sourced, not run.

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
