#include "handset_proxy_socket.h"

#include <daemon.h>
#include <threading/condvar.h>
#include <threading/mutex.h>

#include <errno.h>
#include <poll.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/charon.handset-proxy"

/* A client that does not read for this long is dropped rather than stall IKE. */
#define SEND_TIMEOUT_MS 1000

/* "installed" messages remembered for waiters that have not asked yet */
#define INSTALLED_KEPT 64

typedef struct {
	handset_proxy_socket_t public;
	struct sockaddr_un addr;
	int listen_fd;
	int client_fd;
	uid_t uid;
	mutex_t *mutex;
	/* "installed" messages read from the client: outbound SPIs, newest last */
	uint32_t installed[INSTALLED_KEPT];
	u_int installed_next;
	/* a waiter is reading the client; the others wait on the condvar */
	bool reading;
	condvar_t *condvar;
} private_socket_t;

static void close_client(private_socket_t *this)
{
	if (this->client_fd != -1)
	{
		close(this->client_fd);
		this->client_fd = -1;
	}
}

static bool peer_allowed(private_socket_t *this, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
	{
		DBG1(DBG_CFG, "handset-proxy: SO_PEERCRED failed: %s", strerror(errno));
		return FALSE;
	}
	if (cred.uid != 0 && cred.uid != this->uid)
	{
		DBG1(DBG_CFG, "handset-proxy: refused key client pid %d uid %d",
			 cred.pid, cred.uid);
		return FALSE;
	}
	DBG1(DBG_CFG, "handset-proxy: key client pid %d uid %d connected",
		 cred.pid, cred.uid);
	return TRUE;
}

CALLBACK(on_accept, bool,
	private_socket_t *this, int fd, watcher_event_t event)
{
	struct timeval timeout = {
		.tv_sec = SEND_TIMEOUT_MS / 1000,
		.tv_usec = (SEND_TIMEOUT_MS % 1000) * 1000,
	};
	int client;

	client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (client == -1)
	{
		DBG1(DBG_CFG, "handset-proxy: accept failed: %s", strerror(errno));
		return TRUE;
	}
	if (!peer_allowed(this, client) ||
		setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0)
	{
		close(client);
		return TRUE;
	}
	this->mutex->lock(this->mutex);
	/* a new client replaces the old one */
	close_client(this);
	this->client_fd = client;
	this->mutex->unlock(this->mutex);
	return TRUE;
}

METHOD(handset_proxy_socket_t, send_, bool,
	private_socket_t *this, chunk_t record)
{
	bool sent = FALSE;

	this->mutex->lock(this->mutex);
	if (this->client_fd != -1)
	{
		if (send(this->client_fd, record.ptr, record.len, MSG_NOSIGNAL) ==
			(ssize_t)record.len)
		{
			sent = TRUE;
		}
		else
		{
			DBG1(DBG_CFG, "handset-proxy: key client gone: %s", strerror(errno));
			close_client(this);
		}
	}
	this->mutex->unlock(this->mutex);
	return sent;
}

/* Takes spi out of the installed list; the caller holds the mutex. */
static bool take_installed(private_socket_t *this, uint32_t spi)
{
	u_int i;

	for (i = 0; i < INSTALLED_KEPT; i++)
	{
		if (this->installed[i] == spi && spi)
		{
			this->installed[i] = 0;
			return TRUE;
		}
	}
	return FALSE;
}

/* One client message: "v=1\nevent=installed\nspi_out=<8 hex>\n"; others are ignored. */
static void parse_installed(private_socket_t *this, char *buf, ssize_t len)
{
	char *pos;
	u_int spi;

	buf[len] = '\0';
	if (!strpfx(buf, "v=1\nevent=installed\n"))
	{
		DBG1(DBG_CFG, "handset-proxy: unknown message from key client ignored");
		return;
	}
	pos = strstr(buf, "\nspi_out=");
	if (!pos || sscanf(pos, "\nspi_out=%8x\n", &spi) != 1 || !spi)
	{
		DBG1(DBG_CFG, "handset-proxy: malformed installed message ignored");
		return;
	}
	this->installed[this->installed_next++ % INSTALLED_KEPT] = spi;
}

METHOD(handset_proxy_socket_t, wait_installed, bool,
	private_socket_t *this, uint32_t spi_out, u_int timeout_ms)
{
	timeval_t deadline, now;
	struct pollfd pfd;
	char buf[256];
	ssize_t len;
	int fd, ms;
	bool found;

	time_monotonic(&deadline);
	timeval_add_ms(&deadline, timeout_ms);
	this->mutex->lock(this->mutex);
	while (!(found = take_installed(this, spi_out)))
	{
		time_monotonic(&now);
		if (!timercmp(&now, &deadline, <) || this->client_fd == -1)
		{
			break;
		}
		if (this->reading)
		{
			this->condvar->timed_wait_abs(this->condvar, this->mutex, deadline);
			continue;
		}
		/* read the client ourselves, on a copy of its descriptor: a send
		 * failure may close the original meanwhile */
		fd = dup(this->client_fd);
		if (fd == -1)
		{
			break;
		}
		this->reading = TRUE;
		this->mutex->unlock(this->mutex);
		ms = (deadline.tv_sec - now.tv_sec) * 1000 +
			 (deadline.tv_usec - now.tv_usec) / 1000;
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		len = 0;
		if (poll(&pfd, 1, max(ms, 1)) == 1)
		{
			len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		}
		close(fd);
		this->mutex->lock(this->mutex);
		this->reading = FALSE;
		if (len > 0)
		{
			parse_installed(this, buf, len);
		}
		else if (pfd.revents & (POLLHUP | POLLERR))
		{	/* the client left; nothing more will come */
			this->condvar->broadcast(this->condvar);
			break;
		}
		this->condvar->broadcast(this->condvar);
	}
	this->mutex->unlock(this->mutex);
	return found;
}

/* Binds and listens; 0660 and the group are set before listen() admits anyone. */
static bool open_socket(private_socket_t *this, char *path, char *group)
{
	struct group *gr;

	if (strlen(path) >= sizeof(this->addr.sun_path))
	{
		DBG1(DBG_CFG, "handset-proxy: socket path too long: %s", path);
		return FALSE;
	}
	this->addr.sun_family = AF_UNIX;
	strcpy(this->addr.sun_path, path);
	this->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (this->listen_fd == -1)
	{
		return FALSE;
	}
	unlink(path);
	if (bind(this->listen_fd, (struct sockaddr*)&this->addr,
			 sizeof(this->addr)) != 0 ||
		chmod(path, 0660) != 0)
	{
		DBG1(DBG_CFG, "handset-proxy: unable to bind %s: %s", path,
			 strerror(errno));
		return FALSE;
	}
	if (group)
	{
		gr = getgrnam(group);
		if (!gr || chown(path, -1, gr->gr_gid) != 0)
		{
			DBG1(DBG_CFG, "handset-proxy: unable to set group %s on %s",
				 group, path);
			return FALSE;
		}
	}
	if (listen(this->listen_fd, 4) != 0)
	{
		return FALSE;
	}
	lib->watcher->add(lib->watcher, this->listen_fd, WATCHER_READ,
					  on_accept, this);
	DBG1(DBG_CFG, "handset-proxy: key socket %s", path);
	return TRUE;
}

METHOD(handset_proxy_socket_t, destroy, void,
	private_socket_t *this)
{
	if (this->listen_fd != -1)
	{
		lib->watcher->remove(lib->watcher, this->listen_fd);
		close(this->listen_fd);
		if (this->addr.sun_path[0])
		{
			unlink(this->addr.sun_path);
		}
	}
	close_client(this);
	this->condvar->destroy(this->condvar);
	this->mutex->destroy(this->mutex);
	free(this);
}

handset_proxy_socket_t *handset_proxy_socket_create()
{
	private_socket_t *this;
	char *path, *group;

	INIT(this,
		.public = {
			.send = _send_,
			.wait_installed = _wait_installed,
			.destroy = _destroy,
		},
		.listen_fd = -1,
		.client_fd = -1,
		.uid = lib->settings->get_int(lib->settings,
						"%s.plugins.handset-proxy.uid", 0, lib->ns),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.condvar = condvar_create(CONDVAR_TYPE_DEFAULT),
	);
	path = lib->settings->get_str(lib->settings,
						"%s.plugins.handset-proxy.socket", DEFAULT_SOCKET, lib->ns);
	if (strpfx(path, "unix://"))
	{	/* accept the URI form VICI's socket setting uses */
		path += strlen("unix://");
	}
	group = lib->settings->get_str(lib->settings,
						"%s.plugins.handset-proxy.group", NULL, lib->ns);
	if (!open_socket(this, path, group))
	{
		destroy(this);
		return NULL;
	}
	return &this->public;
}
