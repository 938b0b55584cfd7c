#pragma once
#include <stdint.h>

// What Swift's Glibc module cannot reach: it is built without _GNU_SOURCE (no setns) and
// cannot import function-like macros such as TUNSETIFF.

/// Opens /dev/net/tun as a layer-3 device without packet information, named `name` (may hold
/// a %d pattern). Writes the kernel's name to `actual` (IFNAMSIZ bytes). Returns the fd
/// (non-blocking, close-on-exec) or -errno.
int cmyc_tun_open(const char *name, char *actual);
/// As `cmyc_tun_open`; with `vnet_hdr` every read and write starts with a `virtio_net_hdr`.
int cmyc_tun_open_flags(const char *name, char *actual, int vnet_hdr);
/// TUNSETVNETHDRSZ; 0 or -errno.
int cmyc_tun_set_vnet_hdr_size(int fd, int size);
/// TUNSETOFFLOAD with TUN_F_* bits (CSUM 0x01, TSO4 0x02, TSO6 0x04, USO4 0x20, USO6 0x40:
/// Debian 12's headers lack the last two); 0 or -errno (EINVAL: a bit the kernel refuses).
int cmyc_tun_set_offload(int fd, unsigned int flags);

/// Moves the calling thread into the network namespace `fd` refers to. 0 or -errno.
int cmyc_setns_net(int fd);

/// SO_MARK on a socket (needs CAP_NET_ADMIN). 0 or -errno.
int cmyc_set_mark(int fd, uint32_t mark);

/// IFNAMSIZ, for buffer sizes.
int cmyc_ifnamsiz(void);

/// The SO_MARK option name, for socket-option APIs that take (level, name).
int cmyc_so_mark_option(void);

/// TCP_USER_TIMEOUT's option name at level IPPROTO_TCP.
int cmyc_tcp_user_timeout_option(void);

/// 1 if `fd` refers to a network namespace, 0 if it is another file (such as the empty file a
/// namespace is bind-mounted on, seen from another mount namespace).
int cmyc_is_net_namespace(int fd);

/// Looks `name` up for records of `type` (class IN) through the system resolver: the servers,
/// search domains and options of /etc/resolv.conf, read afresh on each call, plus EDNS0
/// (res_nsearch on a private resolver state, so threads do not share one). Blocking; over TCP
/// (a truncated UDP answer) glibc reads without a timeout, so `udp_only` returns the truncated
/// answer instead. Writes the raw response to `answer` and returns its length, or -1 with
/// `*herr` set: 1 HOST_NOT_FOUND (NXDOMAIN), 2 TRY_AGAIN, 3 NO_RECOVERY, 4 NO_DATA,
/// -1 NETDB_INTERNAL (resolv.conf unusable).
int cmyc_dns_search(const char *name, int type, int udp_only, unsigned char *answer, int length, int *herr);

/// Bytes of heap in use (glibc `mallinfo2().uordblks`), for memory benchmarks.
unsigned long cmyc_heap_in_use(void);

/// Fixes glibc's mmap threshold at `bytes` (`mallopt(M_MMAP_THRESHOLD)`, which also stops the
/// threshold from rising as mapped chunks are freed): allocations that size or larger are
/// mapped, and freeing one returns it to the kernel. Returns 1 on success.
int cmyc_set_mmap_threshold(int bytes);
