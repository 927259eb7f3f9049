#include "handset_proxy_net.h"

#include <daemon.h>

#include <ifaddrs.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
	kernel_net_t public;
} private_net_t;

METHOD(kernel_net_t, get_features, kernel_feature_t,
	private_net_t *this)
{
	return 0;
}

/* The address the host's routing picks toward dest: connect() a UDP socket, read its name. */
METHOD(kernel_net_t, get_source_addr, host_t*,
	private_net_t *this, host_t *dest, host_t *src)
{
	host_t *probe, *found = NULL;
	sockaddr_t *addr;
	socklen_t len;
	int fd;

	if (src)
	{
		return src->clone(src);
	}
	fd = socket(dest->get_family(dest), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
	{
		return NULL;
	}
	probe = dest->clone(dest);
	if (!probe->get_port(probe))
	{	/* connect() wants a port; nothing is sent */
		probe->set_port(probe, IKEV2_UDP_PORT);
	}
	if (connect(fd, probe->get_sockaddr(probe), *probe->get_sockaddr_len(probe)) == 0)
	{
		/* reuse probe's storage: same family, so the same size */
		addr = probe->get_sockaddr(probe);
		len = *probe->get_sockaddr_len(probe);
		if (getsockname(fd, addr, &len) == 0)
		{
			found = host_create_from_sockaddr(addr);
			if (found)
			{
				found->set_port(found, 0);
			}
		}
	}
	probe->destroy(probe);
	close(fd);
	return found;
}

METHOD(kernel_net_t, get_nexthop, host_t*,
	private_net_t *this, host_t *dest, int prefix, host_t *src, char **iface)
{
	return NULL;
}

METHOD(kernel_net_t, get_interface, bool,
	private_net_t *this, host_t *host, char **name)
{
	struct ifaddrs *ifas, *ifa;
	host_t *addr;
	bool found = FALSE;

	if (getifaddrs(&ifas) != 0)
	{
		return FALSE;
	}
	for (ifa = ifas; ifa && !found; ifa = ifa->ifa_next)
	{
		if (!ifa->ifa_addr ||
			ifa->ifa_addr->sa_family != host->get_family(host))
		{
			continue;
		}
		addr = host_create_from_sockaddr(ifa->ifa_addr);
		if (addr)
		{
			found = addr->ip_equals(addr, host);
			addr->destroy(addr);
		}
		if (found && name)
		{
			*name = strdup(ifa->ifa_name);
		}
	}
	freeifaddrs(ifas);
	return found;
}

METHOD(kernel_net_t, create_address_enumerator, enumerator_t*,
	private_net_t *this, kernel_address_type_t which)
{
	return enumerator_create_empty();
}

METHOD(kernel_net_t, create_local_subnet_enumerator, enumerator_t*,
	private_net_t *this)
{
	return enumerator_create_empty();
}

/* A virtual IP belongs to the handset: charon records it (it becomes the
 * CHILD_SA's local selector), the gateway host never gets it. */
METHOD(kernel_net_t, add_ip, status_t,
	private_net_t *this, host_t *virtual_ip, int prefix, char *iface)
{
	return SUCCESS;
}

METHOD(kernel_net_t, del_ip, status_t,
	private_net_t *this, host_t *virtual_ip, int prefix, bool wait)
{
	return SUCCESS;
}

METHOD(kernel_net_t, add_route, status_t,
	private_net_t *this, chunk_t dst_net, uint8_t prefixlen, host_t *gateway,
	host_t *src_ip, char *if_name, bool pass)
{
	return SUCCESS;
}

METHOD(kernel_net_t, del_route, status_t,
	private_net_t *this, chunk_t dst_net, uint8_t prefixlen, host_t *gateway,
	host_t *src_ip, char *if_name, bool pass)
{
	return SUCCESS;
}

METHOD(kernel_net_t, destroy, void,
	private_net_t *this)
{
	free(this);
}

kernel_net_t *handset_proxy_net_create()
{
	private_net_t *this;

	INIT(this,
		.public = {
			.get_features = _get_features,
			.get_source_addr = _get_source_addr,
			.get_nexthop = _get_nexthop,
			.get_interface = _get_interface,
			.create_address_enumerator = _create_address_enumerator,
			.create_local_subnet_enumerator = _create_local_subnet_enumerator,
			.add_ip = _add_ip,
			.del_ip = _del_ip,
			.add_route = _add_route,
			.del_route = _del_route,
			.destroy = _destroy,
		},
	);
	return &this->public;
}
