/* The firmware's local datagram interface for applications: an AF_UNIX datagram socket at a path. */
#ifndef HANDSET_APP_SOCKET_H
#define HANDSET_APP_SOCKET_H

#include <stddef.h>
#include <stdint.h>

/* Longest socket path, without its NUL (sockaddr_un.sun_path holds 108 bytes on Linux). */
#define HS_APP_PATH_MAX 107

/* Binds a non-blocking AF_UNIX datagram socket at path with SO_PASSCRED set, so that every datagram carries its
 * sender's credentials as the kernel knows them. The file is created 0600 (umask 0177 around bind, no window
 * with wider modes); with gid >= 0 it is then given that group and made 0660. A socket file left at path by an
 * earlier run is replaced; any other kind of file there is left alone (-EEXIST). Returns the fd or -errno. */
int hs_app_socket_bind(const char *path, int64_t gid);

/* Receives one datagram without blocking: its length, 0 when none is waiting, or -errno. *uid is the sender's
 * uid from SCM_CREDENTIALS, or -1 if the datagram came without credentials. The sender's address is copied to
 * from (NUL-terminated) with *from_len its length, 0 when the sender is unnamed or abstract. */
long hs_app_socket_recv(int fd, uint8_t *buf, size_t cap, int64_t *uid, char *from, size_t from_cap, size_t *from_len);

/* Sends one datagram to the socket bound at path to (NUL-terminated); 0 or -errno. Never blocks. */
int hs_app_socket_send(int fd, const uint8_t *buf, size_t len, const char *to);

/* Closes fd and removes the socket file at path. */
void hs_app_socket_close(int fd, const char *path);
int hs_fd_close(int fd);

/* The process's effective uid: the default app owner. */
uint32_t hs_effective_uid(void);

#endif
