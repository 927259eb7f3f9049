#include "handset_files.h"
#include "handset_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int hs_file_replace_atomic(const char *dir, const char *name, const uint8_t *data, size_t len) {
    char tmp[512], dst[512];
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp) return -ENAMETOOLONG;
    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    /* A temp file left by a crash keeps its old mode under O_CREAT; the state holds keys, so force owner-only. */
    if (fchmod(fd, 0600) != 0) { int e = errno; close(fd); unlink(tmp); return -e; }
    int rc = hs_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc != 0) { unlink(tmp); return rc; }
    if (rename(tmp, dst) != 0) { rc = -errno; unlink(tmp); return rc; }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -errno;
    rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

/// Reads up to `cap` bytes (retrying EINTR), closes `fd`: the count, or -errno.
static long read_all_and_close(int fd, uint8_t *out, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, out + got, cap - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    return (long)got;
}

long hs_file_read(const char *path, uint8_t *out, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    return read_all_and_close(fd, out, cap);
}

long hs_file_read_private(const char *path, uint8_t *out, size_t cap, uint32_t *mode, uint32_t *owner) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); return -e; }
    *mode = (uint32_t)(st.st_mode & 07777);
    *owner = (uint32_t)st.st_uid;
    if (!S_ISREG(st.st_mode)) { close(fd); return -EINVAL; }
    if ((st.st_mode & 077) != 0) { close(fd); return -EPERM; }
    return read_all_and_close(fd, out, cap);
}

int hs_file_remove(const char *dir, const char *name) {
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return -ENAMETOOLONG;
    if (unlink(path) != 0) return errno == ENOENT ? 0 : -errno;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -errno;
    int rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

int hs_mkdir(const char *dir) {
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
    return -errno;
}
