#ifndef HANDSET_PROXY_IPSEC_H_
#define HANDSET_PROXY_IPSEC_H_

#include <kernel/kernel_ipsec.h>

/* A kernel interface that installs nothing: the handset, not this host, does the ESP. */
kernel_ipsec_t *handset_proxy_ipsec_create();

#endif
