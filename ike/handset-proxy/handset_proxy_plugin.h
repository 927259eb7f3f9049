/*
 * handset-proxy: charon negotiates IKE for a handset; the handset does the ESP.
 * The plugin is charon's kernel interface (installs nothing, draws random SPIs)
 * and hands each CHILD_SA's keys to the gateway over a local socket.
 */
#ifndef HANDSET_PROXY_PLUGIN_H_
#define HANDSET_PROXY_PLUGIN_H_

#include <plugins/plugin.h>

plugin_t *handset_proxy_plugin_create();

#endif
