/* The firmware's local datagram interface for applications: a UDP socket on 127.0.0.1. */
#ifndef HANDSET_APP_SOCKET_H
#define HANDSET_APP_SOCKET_H

#include <stddef.h>
#include <stdint.h>

/* Binds a non-blocking UDP socket to 127.0.0.1:port; returns the fd or -errno. */
int hs_udp_bind_loopback(uint16_t port);
/* Receives one datagram without blocking: bytes, 0 when none is waiting, or -errno. Sender as host-order v4 + port. */
long hs_udp_recv(int fd, uint8_t *buf, size_t cap, uint32_t *from_addr, uint16_t *from_port);
/* Sends one datagram to addr:port (host order); returns 0 or -errno. */
int hs_udp_send(int fd, const uint8_t *buf, size_t len, uint32_t addr, uint16_t port);
int hs_fd_close(int fd);

#endif
