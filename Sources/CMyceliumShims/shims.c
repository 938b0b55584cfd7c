#define _GNU_SOURCE
#include "CMyceliumShims.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>

_Static_assert(IFNAMSIZ == 16, "IFNAMSIZ changed");

int cmyc_tun_open(const char *name, char *actual) {
    return cmyc_tun_open_flags(name, actual, 0);
}

int cmyc_tun_open_flags(const char *name, char *actual, int vnet_hdr) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int cmyc_tun_set_vnet_hdr_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) == 0 ? 0 : -errno;
}

int cmyc_tun_set_offload(int fd, unsigned int flags) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) == 0 ? 0 : -errno;
}

int cmyc_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

int cmyc_set_mark(int fd, uint32_t mark) {
    return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0 ? 0 : -errno;
}

int cmyc_ifnamsiz(void) { return IFNAMSIZ; }

int cmyc_so_mark_option(void) { return SO_MARK; }

int cmyc_tcp_user_timeout_option(void) { return TCP_USER_TIMEOUT; }

int cmyc_is_net_namespace(int fd) {
    return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET ? 1 : 0;
}

int cmyc_dns_search(const char *name, int type, int udp_only, unsigned char *answer, int length, int *herr) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) {
        // Not res_nclose: a state res_ninit could not set up may hold fd 0 as its socket.
        *herr = NETDB_INTERNAL;
        return -1;
    }
    // EDNS0: answers up to glibc's 1200 bytes come over UDP; larger ones fall back to TCP,
    // unless udp_only (RES_IGNTC: the truncated answer is returned as it is).
    state.options |= RES_USE_EDNS0;
    if (udp_only) state.options |= RES_IGNTC;
    int n = res_nsearch(&state, name, ns_c_in, type, answer, length);
    *herr = n < 0 ? state.res_h_errno : 0;
    res_nclose(&state);
    return n;
}

#include <malloc.h>

unsigned long cmyc_heap_in_use(void) {
    return mallinfo2().uordblks;
}

int cmyc_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}
