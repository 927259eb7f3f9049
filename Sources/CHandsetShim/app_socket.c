#define _GNU_SOURCE /* struct ucred, SCM_CREDENTIALS */
#include "handset_app_socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_address(struct sockaddr_un *a, const char *path) {
    size_t n = strlen(path);
    if (n == 0 || n > HS_APP_PATH_MAX) return -ENAMETOOLONG;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n);
    return 0;
}

int hs_app_socket_bind(const char *path, int64_t gid) {
    struct sockaddr_un a;
    int rc = fill_address(&a, path);
    if (rc != 0) return rc;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return -EEXIST;
        if (unlink(path) != 0) return -errno;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) goto fail;
    mode_t old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc != 0) goto fail;
    if (gid >= 0 && (chown(path, (uid_t)-1, (gid_t)gid) != 0 || chmod(path, 0660) != 0)) {
        int e = errno;
        unlink(path);
        close(fd);
        return -e;
    }
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

long hs_app_socket_recv(int fd, uint8_t *buf, size_t cap, int64_t *uid, char *from, size_t from_cap, size_t *from_len) {
    struct sockaddr_un a;
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&a, 0, sizeof a);
    m.msg_name = &a;
    m.msg_namelen = sizeof a;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.bytes;
    m.msg_controllen = sizeof control.bytes;
    ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    *uid = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            *uid = cred.uid;
        }
    }
    if (m.msg_flags & MSG_CTRUNC) *uid = -1;
    *from_len = 0;
    size_t base = offsetof(struct sockaddr_un, sun_path);
    if (m.msg_namelen > base && a.sun_path[0] != 0) {
        size_t k = strnlen(a.sun_path, m.msg_namelen - base);
        if (k < from_cap) {
            memcpy(from, a.sun_path, k);
            from[k] = 0;
            *from_len = k;
        }
    }
    return (long)n;
}

int hs_app_socket_send(int fd, const uint8_t *buf, size_t len, const char *to) {
    struct sockaddr_un a;
    int rc = fill_address(&a, to);
    if (rc != 0) return rc;
    return sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof a) < 0 ? -errno : 0;
}

void hs_app_socket_close(int fd, const char *path) {
    if (fd >= 0) close(fd);
    if (path && path[0]) unlink(path);
}

uint32_t hs_effective_uid(void) { return (uint32_t)geteuid(); }

int hs_fd_close(int fd) { return close(fd) == 0 ? 0 : -errno; }
