#include "handset_proxy_ipsec.h"
#include "handset_proxy_listener.h"

#include <daemon.h>
#include <collections/hashtable.h>
#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>

/* RFC 4303: SPIs 1..255 are reserved. RFC 3173: CPIs 256..61439 are negotiable. */
#define SPI_MIN 256
#define CPI_MIN 256
#define CPI_MAX 61439

typedef struct {
	kernel_ipsec_t public;
	rng_t *rng;
	/* inbound SPIs handed out and not yet deleted, so no two live SAs share one */
	hashtable_t *spis;
	mutex_t *mutex;
} private_ipsec_t;

METHOD(kernel_ipsec_t, get_features, kernel_feature_t,
	private_ipsec_t *this)
{
	/* the handset speaks ESP-in-UDP only (RFC 3948), so always encapsulate */
	return KERNEL_REQUIRE_UDP_ENCAPSULATION | KERNEL_NO_POLICY_UPDATES;
}

METHOD(kernel_ipsec_t, get_spi, status_t,
	private_ipsec_t *this, host_t *src, host_t *dst, uint8_t protocol,
	uint32_t *spi)
{
	uint32_t value;
	int tries;

	this->mutex->lock(this->mutex);
	for (tries = 0; tries < 16; tries++)
	{
		if (!this->rng->get_bytes(this->rng, sizeof(value), (uint8_t*)&value))
		{
			break;
		}
		if (value >= SPI_MIN &&
			!this->spis->get(this->spis, (void*)(uintptr_t)value))
		{
			this->spis->put(this->spis, (void*)(uintptr_t)value,
							(void*)(uintptr_t)value);
			this->mutex->unlock(this->mutex);
			*spi = htonl(value);
			return SUCCESS;
		}
	}
	this->mutex->unlock(this->mutex);
	DBG1(DBG_KNL, "handset-proxy: unable to draw an SPI");
	return FAILED;
}

METHOD(kernel_ipsec_t, get_cpi, status_t,
	private_ipsec_t *this, host_t *src, host_t *dst, uint16_t *cpi)
{
	uint16_t value;

	if (!this->rng->get_bytes(this->rng, sizeof(value), (uint8_t*)&value))
	{
		return FAILED;
	}
	*cpi = htons(CPI_MIN + value % (CPI_MAX - CPI_MIN + 1));
	return SUCCESS;
}

/* An SA lifetime running out, as a kernel would report it. At shutdown charon cancels its threads before it
 * flushes the scheduler and unloads plugins (daemon.c, 5.9.8), so a queued job never runs against a destroyed
 * interface; its cleanup touches only the job's own data. */
typedef struct {
	private_ipsec_t *ipsec;
	uint8_t protocol;
	uint32_t spi;
	host_t *dst;
	bool hard;
} expiry_t;

static void expiry_destroy(expiry_t *e)
{
	e->dst->destroy(e->dst);
	free(e);
}

static job_requeue_t expire(expiry_t *e)
{
	bool live;

	e->ipsec->mutex->lock(e->ipsec->mutex);
	live = e->ipsec->spis->get(e->ipsec->spis, (void*)(uintptr_t)ntohl(e->spi)) != NULL;
	e->ipsec->mutex->unlock(e->ipsec->mutex);
	if (live)
	{
		charon->kernel->expire(charon->kernel, e->protocol, e->spi, e->dst, e->hard);
	}
	return JOB_REQUEUE_NONE;
}

static void schedule_expiry(private_ipsec_t *this, kernel_ipsec_sa_id_t *id, uint64_t seconds, bool hard)
{
	expiry_t *e;

	if (!seconds)
	{
		return;
	}
	INIT(e,
		.ipsec = this,
		.protocol = id->proto,
		.spi = id->spi,
		.dst = id->dst->clone(id->dst),
		.hard = hard,
	);
	lib->scheduler->schedule_job(lib->scheduler,
		(job_t*)callback_job_create((callback_job_cb_t)expire, e, (callback_job_cleanup_t)expiry_destroy, NULL),
		seconds);
}

METHOD(kernel_ipsec_t, add_sa, status_t,
	private_ipsec_t *this, kernel_ipsec_sa_id_t *id, kernel_ipsec_add_sa_t *data)
{
	if (!data->inbound)
	{	/* a rekey we initiated may wait here for the handset */
		handset_proxy_listener_hold_rekey(ntohl(id->spi));
		return SUCCESS;
	}
	/* charon rekeys a CHILD_SA when its kernel reports the inbound SA's soft expiry, and deletes it on the hard
	 * one; nothing is installed here, so this interface keeps the clock (rekey_time, jitter applied by charon) */
	schedule_expiry(this, id, data->lifetime->time.rekey, FALSE);
	schedule_expiry(this, id, data->lifetime->time.life, TRUE);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, update_sa, status_t,
	private_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_update_sa_t *data)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, query_sa, status_t,
	private_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_query_sa_t *data, uint64_t *bytes, uint64_t *packets,
	time_t *time)
{
	/* the traffic never passes here; the handset has the counters */
	return NOT_SUPPORTED;
}

METHOD(kernel_ipsec_t, del_sa, status_t,
	private_ipsec_t *this, kernel_ipsec_sa_id_t *id, kernel_ipsec_del_sa_t *data)
{
	this->mutex->lock(this->mutex);
	this->spis->remove(this->spis, (void*)(uintptr_t)ntohl(id->spi));
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, flush_sas, status_t,
	private_ipsec_t *this)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, add_policy, status_t,
	private_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, query_policy, status_t,
	private_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_query_policy_t *data, time_t *use_time)
{
	return NOT_SUPPORTED;
}

METHOD(kernel_ipsec_t, del_policy, status_t,
	private_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, flush_policies, status_t,
	private_ipsec_t *this)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, bypass_socket, bool,
	private_ipsec_t *this, int fd, int family)
{
	return TRUE;
}

METHOD(kernel_ipsec_t, enable_udp_decap, bool,
	private_ipsec_t *this, int fd, int family, uint16_t port)
{
	return TRUE;
}

METHOD(kernel_ipsec_t, destroy, void,
	private_ipsec_t *this)
{
	this->spis->destroy(this->spis);
	this->mutex->destroy(this->mutex);
	DESTROY_IF(this->rng);
	free(this);
}

kernel_ipsec_t *handset_proxy_ipsec_create()
{
	private_ipsec_t *this;

	INIT(this,
		.public = {
			.get_features = _get_features,
			.get_spi = _get_spi,
			.get_cpi = _get_cpi,
			.add_sa = _add_sa,
			.update_sa = _update_sa,
			.query_sa = _query_sa,
			.del_sa = _del_sa,
			.flush_sas = _flush_sas,
			.add_policy = _add_policy,
			.query_policy = _query_policy,
			.del_policy = _del_policy,
			.flush_policies = _flush_policies,
			.bypass_socket = _bypass_socket,
			.enable_udp_decap = _enable_udp_decap,
			.destroy = _destroy,
		},
		.rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK),
		.spis = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	if (!this->rng)
	{
		DBG1(DBG_KNL, "handset-proxy: no RNG for SPIs");
		destroy(this);
		return NULL;
	}
	return &this->public;
}
