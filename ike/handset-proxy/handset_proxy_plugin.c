#include "handset_proxy_plugin.h"
#include "handset_proxy_ipsec.h"
#include "handset_proxy_listener.h"
#include "handset_proxy_net.h"
#include "handset_proxy_socket.h"

#include <daemon.h>

typedef struct {
	plugin_t public;
	handset_proxy_socket_t *socket;
	handset_proxy_listener_t *listener;
} private_plugin_t;

METHOD(plugin_t, get_name, char*,
	private_plugin_t *this)
{
	return "handset-proxy";
}

static bool register_listener(private_plugin_t *this, plugin_feature_t *feature,
							  bool reg, void *data)
{
	if (reg)
	{
		this->socket = handset_proxy_socket_create();
		if (!this->socket)
		{
			return FALSE;
		}
		this->listener = handset_proxy_listener_create(this->socket);
		charon->bus->add_listener(charon->bus, &this->listener->listener);
	}
	else if (this->listener)
	{
		charon->bus->remove_listener(charon->bus, &this->listener->listener);
		this->listener->destroy(this->listener);
		this->socket->destroy(this->socket);
		this->listener = NULL;
		this->socket = NULL;
	}
	return TRUE;
}

METHOD(plugin_t, get_features, int,
	private_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK(kernel_ipsec_register, handset_proxy_ipsec_create),
			PLUGIN_PROVIDE(CUSTOM, "kernel-ipsec"),
				PLUGIN_DEPENDS(RNG, RNG_WEAK),
		PLUGIN_CALLBACK(kernel_net_register, handset_proxy_net_create),
			PLUGIN_PROVIDE(CUSTOM, "kernel-net"),
		PLUGIN_CALLBACK((plugin_feature_callback_t)register_listener, NULL),
			PLUGIN_PROVIDE(CUSTOM, "handset-proxy"),
	};
	*features = f;
	return countof(f);
}

METHOD(plugin_t, destroy, void,
	private_plugin_t *this)
{
	free(this);
}

plugin_t *handset_proxy_plugin_create()
{
	private_plugin_t *this;

	INIT(this,
		.public = {
			.get_name = _get_name,
			.get_features = _get_features,
			.destroy = _destroy,
		},
	);
	return &this->public;
}
