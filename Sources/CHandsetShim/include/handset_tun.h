/* A TUN interface (Linux): any program's traffic routed into it reaches the firmware as IP packets.
 * Needs CAP_NET_ADMIN (root) and /dev/net/tun. Every call returns >= 0 on success or -errno. */
#ifndef HANDSET_TUN_H
#define HANDSET_TUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens /dev/net/tun and attaches (or creates) interface `name` as IFF_TUN|IFF_NO_PI: one read or write is
 * one bare IP packet. The fd is non-blocking and close-on-exec; the interface goes away when it is closed.
 * Returns the fd or -errno (-EPERM/-EACCES without CAP_NET_ADMIN, -ENOENT without /dev/net/tun,
 * -EINVAL for an empty or too long name). */
int hs_tun_open(const char *name);
/* Gives interface `name` an IPv4 address (host order) with `prefix` bits of netmask, sets its MTU
 * (0 leaves it) and brings the link up. Routes beyond the connected prefix are the operator's job. */
int hs_tun_configure(const char *name, uint32_t addr, int prefix, int mtu);
/* Reads one packet without blocking: bytes, 0 when none is waiting, or -errno. A packet longer than
 * cap is cut to cap by the kernel; callers pass a buffer of at least the MTU. */
long hs_tun_read(int fd, uint8_t *buf, size_t cap);
/* Writes one whole packet: 0, or -errno (-EAGAIN when the kernel queue is full: the packet is dropped). */
int hs_tun_write(int fd, const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
