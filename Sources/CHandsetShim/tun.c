/* TUN device and interface set-up through ioctl: no netlink, no `ip` binary needed on the board. */
#include "handset_tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int copy_name(char out[IFNAMSIZ], const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= IFNAMSIZ) return -EINVAL;
    memset(out, 0, IFNAMSIZ);
    memcpy(out, name, n);
    return 0;
}

int hs_tun_open(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int rc = copy_name(ifr.ifr_name, name);
    if (rc != 0) return rc;
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int set_addr(int s, unsigned long req, const char *name, uint32_t v) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    copy_name(ifr.ifr_name, name);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(v);
    memcpy(&ifr.ifr_addr, &a, sizeof a);
    return ioctl(s, req, &ifr) == 0 ? 0 : -errno;
}

int hs_tun_configure(const char *name, uint32_t addr, int prefix, int mtu) {
    char check[IFNAMSIZ];
    int rc = copy_name(check, name);
    if (rc != 0) return rc;
    if (prefix < 0 || prefix > 32 || mtu < 0) return -EINVAL;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    uint32_t mask = prefix == 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
    /* The address first: setting it resets the netmask to the class default. */
    rc = set_addr(s, SIOCSIFADDR, name, addr);
    if (rc == 0) rc = set_addr(s, SIOCSIFNETMASK, name, mask);
    struct ifreq ifr;
    if (rc == 0 && mtu > 0) {
        memset(&ifr, 0, sizeof ifr);
        copy_name(ifr.ifr_name, name);
        ifr.ifr_mtu = mtu;
        if (ioctl(s, SIOCSIFMTU, &ifr) != 0) rc = -errno;
    }
    if (rc == 0) {
        memset(&ifr, 0, sizeof ifr);
        copy_name(ifr.ifr_name, name);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) rc = -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (rc == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) != 0) rc = -errno;
    }
    close(s);
    return rc;
}

long hs_tun_read(int fd, uint8_t *buf, size_t cap) {
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    }
}

int hs_tun_write(int fd, const uint8_t *buf, size_t len) {
    for (;;) {
        ssize_t n = write(fd, buf, len);
        if (n >= 0) return (size_t)n == len ? 0 : -EIO;
        if (errno != EINTR) return -errno;
    }
}
