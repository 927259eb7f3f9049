/* termios, poll and pty wrappers for the AT engine. Errors come back as -errno. */
#define _GNU_SOURCE
#include "handset_serial.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static speed_t baud_constant(uint32_t baud) {
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return 0;
    }
}

int hs_serial_configure(int fd, uint32_t baud, int rtscts) {
    speed_t speed = baud_constant(baud);
    if (speed == 0) return -EINVAL;
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -errno;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CSTOPB | PARENB);
    if (rtscts) t.c_cflag |= CRTSCTS; else t.c_cflag &= ~CRTSCTS;
    t.c_iflag &= ~(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, speed) != 0 || cfsetospeed(&t, speed) != 0) return -errno;
    if (tcsetattr(fd, TCSANOW, &t) != 0) return -errno;
    return 0;
}

int hs_serial_open(const char *path, uint32_t baud, int rtscts) {
    if (baud_constant(baud) == 0) return -EINVAL;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = hs_serial_configure(fd, baud, rtscts);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int hs_serial_read(int fd, uint8_t *buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

int hs_serial_write(int fd, const uint8_t *buf, size_t len) {
    for (;;) {
        ssize_t n = write(fd, buf, len);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

static int poll_for(int fd, short events, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    for (;;) {
        int rc = poll(&p, 1, timeout_ms);
        if (rc > 0) {
            if (p.revents & POLLNVAL) return -EBADF;
            return 1; /* POLLHUP/POLLERR: the next read or write reports the error */
        }
        if (rc == 0) return 0;
        if (errno == EINTR) continue;
        return -errno;
    }
}

int hs_serial_poll_read(int fd, int timeout_ms) { return poll_for(fd, POLLIN, timeout_ms); }
int hs_serial_poll_write(int fd, int timeout_ms) { return poll_for(fd, POLLOUT, timeout_ms); }

int hs_serial_close(int fd) { return close(fd) == 0 ? 0 : -errno; }

int hs_serial_flush(int fd) { return tcflush(fd, TCIOFLUSH) == 0 ? 0 : -errno; }

void hs_sleep_ms(uint32_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int hs_pty_open(int *master_fd, int *slave_fd, char *slave_name, size_t name_len) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -errno;
    if (grantpt(m) != 0 || unlockpt(m) != 0) {
        int e = errno;
        close(m);
        return -e;
    }
    char name[128];
    if (ptsname_r(m, name, sizeof name) != 0) {
        int e = errno;
        close(m);
        return -e;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s < 0) {
        int e = errno;
        close(m);
        return -e;
    }
    struct termios t;
    if (tcgetattr(s, &t) == 0) {
        cfmakeraw(&t);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        tcsetattr(s, TCSANOW, &t);
    }
    int fl = fcntl(m, F_GETFL);
    if (fl >= 0) fcntl(m, F_SETFL, fl | O_NONBLOCK);
    if (slave_name && name_len > 0) {
        size_t n = strlen(name);
        if (n >= name_len) n = name_len - 1;
        memcpy(slave_name, name, n);
        slave_name[n] = 0;
    }
    *master_fd = m;
    *slave_fd = s;
    return 0;
}
