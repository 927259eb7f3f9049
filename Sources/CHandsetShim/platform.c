/* Thin system-call wrappers, so Swift handset code needs neither Glibc nor Foundation. */
#include "handset_shim.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

uint64_t hs_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hs_realtime_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

int hs_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hs_errno(void) { return errno; }

void hs_exit(int code) { exit(code); }

const char *hs_strerror(int err) {
    const char *s = strerror(err);
    return s ? s : "unknown error";
}

static int saved_argc;
static char **saved_argv;

/* glibc hands constructors argc/argv/envp. */
__attribute__((constructor)) static void capture_args(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

int hs_argc(void) { return saved_argc; }
const char *hs_argv(int i) { return (i >= 0 && i < saved_argc) ? saved_argv[i] : 0; }

void hs_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

/* The one flag a signal handler may touch. */
static volatile sig_atomic_t stop_requested;
static void on_stop(int sig) { (void)sig; stop_requested = 1; }

int hs_stop_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, 0) != 0 || sigaction(SIGINT, &sa, 0) != 0) return -errno;
    return 0;
}

int hs_stop_requested(void) { return stop_requested != 0; }

int hs_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return -errno;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -errno;
    return 0;
}
