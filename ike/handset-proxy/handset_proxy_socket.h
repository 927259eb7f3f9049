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

	void (*destroy)(handset_proxy_socket_t *this);
};

handset_proxy_socket_t *handset_proxy_socket_create();

#endif
