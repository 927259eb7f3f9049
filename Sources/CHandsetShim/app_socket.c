#include "handset_app_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int hs_udp_bind_loopback(uint16_t port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

long hs_udp_recv(int fd, uint8_t *buf, size_t cap, uint32_t *from_addr, uint16_t *from_port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&a, &len);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    *from_addr = ntohl(a.sin_addr.s_addr);
    *from_port = ntohs(a.sin_port);
    return (long)n;
}

int hs_udp_send(int fd, const uint8_t *buf, size_t len, uint32_t addr, uint16_t port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(addr);
    return sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof a) < 0 ? -errno : 0;
}

int hs_fd_close(int fd) { return close(fd) == 0 ? 0 : -errno; }
