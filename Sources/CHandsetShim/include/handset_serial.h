/* Serial ports and pseudo-terminals for the AT engine: thin termios/poll wrappers.
 * Every call returns >= 0 on success or -errno; nothing here keeps state. */
#ifndef HANDSET_SERIAL_H
#define HANDSET_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens path non-blocking, without becoming its controlling terminal, and applies hs_serial_configure.
 * Returns the fd or -errno (-EINVAL for an unsupported baud rate). */
int hs_serial_open(const char *path, uint32_t baud, int rtscts);
/* Raw 8N1, no echo, no flow control unless rtscts; baud one of 9600..921600. */
int hs_serial_configure(int fd, uint32_t baud, int rtscts);
/* Bytes read (0 when nothing is pending), or -errno. EINTR is retried. */
int hs_serial_read(int fd, uint8_t *buf, size_t len);
/* Bytes written (0 when the device would block), or -errno. */
int hs_serial_write(int fd, const uint8_t *buf, size_t len);
/* 1 when fd is readable (or hung up), 0 on timeout, -errno on failure. timeout_ms < 0 waits forever. */
int hs_serial_poll_read(int fd, int timeout_ms);
/* 1 when fd is writable, 0 on timeout, -errno on failure. */
int hs_serial_poll_write(int fd, int timeout_ms);
int hs_serial_close(int fd);
/* Discards pending input and output. */
int hs_serial_flush(int fd);
void hs_sleep_ms(uint32_t ms);

/* A pseudo-terminal pair in raw mode: master for the modem side, slave for the driver side.
 * slave_name receives the slave's path (NUL-terminated). Returns 0 or -errno. */
int hs_pty_open(int *master_fd, int *slave_fd, char *slave_name, size_t name_len);

#ifdef __cplusplus
}
#endif
#endif
