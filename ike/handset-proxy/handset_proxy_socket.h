#ifndef HANDSET_PROXY_SOCKET_H_
#define HANDSET_PROXY_SOCKET_H_

#include <library.h>

typedef struct handset_proxy_socket_t handset_proxy_socket_t;

/*
 * The key socket: AF_UNIX SOCK_SEQPACKET, mode 0660, one client at a time,
 * admitted by SO_PEERCRED (uid 0 or the configured uid).
 */
struct handset_proxy_socket_t {

	/* Sends one record. FALSE if no client is connected or the send failed. */
	bool (*send)(handset_proxy_socket_t *this, chunk_t record);

	/*
	 * Waits up to timeout_ms for the client's "installed" message for the
	 * SA the handset sends on with spi_out (host order). TRUE if it came.
	 */
	bool (*wait_installed)(handset_proxy_socket_t *this, uint32_t spi_out,
						   u_int timeout_ms);

	void (*destroy)(handset_proxy_socket_t *this);
};

handset_proxy_socket_t *handset_proxy_socket_create();

#endif
