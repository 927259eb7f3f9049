#ifndef HANDSET_PROXY_NET_H_
#define HANDSET_PROXY_NET_H_

#include <kernel/kernel_net.h>

/*
 * The smallest network interface charon accepts: it finds source addresses
 * and interfaces, changes nothing on the host (virtual IPs and routes are
 * accepted and not installed), and lists no local addresses, so MOBIKE
 * advertises none of the gateway host's.
 */
kernel_net_t *handset_proxy_net_create();

#endif
