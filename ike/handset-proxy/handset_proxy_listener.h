#ifndef HANDSET_PROXY_LISTENER_H_
#define HANDSET_PROXY_LISTENER_H_

#include "handset_proxy_socket.h"

#include <bus/listeners/listener.h>

typedef struct handset_proxy_listener_t handset_proxy_listener_t;

/*
 * Turns CHILD_SA events into key records (up, rekeyed, down) on the key socket.
 */
struct handset_proxy_listener_t {

	listener_t listener;

	void (*destroy)(handset_proxy_listener_t *this);
};

/* Announces a rekey we initiated and waits for the handset (see the .c). */
void handset_proxy_listener_hold_rekey(uint32_t spi_out);

handset_proxy_listener_t *handset_proxy_listener_create(
										handset_proxy_socket_t *socket);

#endif
