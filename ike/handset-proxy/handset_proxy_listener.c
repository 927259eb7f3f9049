#include "handset_proxy_listener.h"

#include <daemon.h>
#include <collections/hashtable.h>
#include <threading/mutex.h>

#include <inttypes.h>

/* Fits two long identities and a few selectors; a longer record is dropped, never cut. */
#define FIELD_LEN 1024
#define RECORD_LEN 4096

/* What one CHILD_SA's records say, kept from key derivation to its last record. */
typedef struct {
	/* ike_name= ... spi_out= lines */
	char *head;
	/* local_ts= and remote_ts= lines */
	char *ts;
	/* wiped as soon as the up/rekeyed record is out */
	chunk_t key_in;
	chunk_t key_out;
	/* monotonic, 0 unknown */
	time_t soft;
	time_t hard;
	/* host order: the SPI the handset sends with */
	uint32_t spi_out;
} sa_info_t;

typedef struct {
	handset_proxy_listener_t public;
	handset_proxy_socket_t *socket;
	/* unique id -> sa_info_t with keys: derived, not yet up or rekeyed */
	hashtable_t *pending;
	/* unique id -> sa_info_t without keys: announced, owes a down record */
	hashtable_t *announced;
	mutex_t *mutex;
	/* hold_rekey: how long a rekey we initiated may wait for the handset (ms, 0 never) */
	u_int hold_ms;
	/* at most this many rekeys held at once: each holds a charon thread */
	u_int hold_max;
	u_int holding;
	/* ike_keys: IKE_SA keys go to the key client too, for a Wireshark keylog */
	bool ike_keys;
} private_listener_t;

/* The one listener, for the kernel interface's rekey hold (handset_proxy_listener_hold_rekey). */
static private_listener_t *active;

static void sa_info_destroy(sa_info_t *info)
{
	free(info->head);
	free(info->ts);
	chunk_clear(&info->key_in);
	chunk_clear(&info->key_out);
	free(info);
}

static char *encr_name(child_sa_t *child_sa, size_t key_len)
{
	proposal_t *proposal = child_sa->get_proposal(child_sa);
	uint16_t alg, size = 0;

	if (!proposal ||
		!proposal->get_algorithm(proposal, ENCRYPTION_ALGORITHM, &alg, &size))
	{
		return NULL;
	}
	/* key_len includes the 4 octet salt (RFC 4106, RFC 7634) */
	if (alg == ENCR_AES_GCM_ICV16 && size == 128 && key_len == 20)
	{
		return "aes128gcm16";
	}
	if (alg == ENCR_AES_GCM_ICV16 && size == 256 && key_len == 36)
	{
		return "aes256gcm16";
	}
	if (alg == ENCR_CHACHA20_POLY1305 && key_len == 36)
	{
		return "chacha20poly1305";
	}
	return NULL;
}

static bool esn_of(child_sa_t *child_sa)
{
	proposal_t *proposal = child_sa->get_proposal(child_sa);
	uint16_t esn;

	return proposal &&
		proposal->get_algorithm(proposal, EXTENDED_SEQUENCE_NUMBERS, &esn, NULL) &&
		esn == EXT_SEQ_NUMBERS;
}

/* "<cidr>[ <proto>/<port>|<from>-<to>]", comma-separated; FALSE if it does not fit */
static bool print_ts(child_sa_t *child_sa, bool local, char *buf, size_t len)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	host_t *net;
	uint8_t mask, proto;
	uint16_t from, to;
	size_t pos = 0;
	bool ok = TRUE;
	int n;

	buf[0] = '\0';
	enumerator = child_sa->create_ts_enumerator(child_sa, local);
	while (ok && enumerator->enumerate(enumerator, &ts))
	{
		/* a range that is no subnet: the handset's selectors are CIDR only */
		ok = ts->to_subnet(ts, &net, &mask);
		n = snprintf(buf + pos, len - pos, "%s%H/%u", pos ? "," : "", net, mask);
		net->destroy(net);
		ok = ok && n >= 0 && (size_t)n < len - pos;
		pos += ok ? n : 0;
		proto = ts->get_protocol(ts);
		if (ok && proto)
		{
			from = ts->get_from_port(ts);
			to = ts->get_to_port(ts);
			n = (from == to) ?
				snprintf(buf + pos, len - pos, " %u/%u", proto, from) :
				snprintf(buf + pos, len - pos, " %u/%u-%u", proto, from, to);
			ok = n >= 0 && (size_t)n < len - pos;
			pos += ok ? n : 0;
		}
	}
	enumerator->destroy(enumerator);
	return ok;
}

static sa_info_t *sa_info_create(ike_sa_t *ike_sa, child_sa_t *child_sa,
								 bool initiator, chunk_t encr_i, chunk_t encr_r)
{
	sa_info_t *info;
	host_t *me, *other;
	char *encr, *mode, local_ts[FIELD_LEN / 2], remote_ts[FIELD_LEN / 2];
	char head[FIELD_LEN], ts[FIELD_LEN];
	int n, m;

	encr = encr_name(child_sa, encr_i.len);
	if (!encr)
	{
		DBG1(DBG_CHD, "handset-proxy: CHILD_SA %s{%u} uses an algorithm the "
			 "handset lacks (aes128gcm16, aes256gcm16, chacha20poly1305)",
			 child_sa->get_name(child_sa), child_sa->get_unique_id(child_sa));
		return NULL;
	}
	switch (child_sa->get_mode(child_sa))
	{
		case MODE_TUNNEL:
			mode = "tunnel";
			break;
		case MODE_TRANSPORT:
			mode = "transport";
			break;
		default:
			DBG1(DBG_CHD, "handset-proxy: CHILD_SA %s{%u}: mode not supported",
				 child_sa->get_name(child_sa), child_sa->get_unique_id(child_sa));
			return NULL;
	}
	if (!print_ts(child_sa, TRUE, local_ts, sizeof(local_ts)) ||
		!print_ts(child_sa, FALSE, remote_ts, sizeof(remote_ts)))
	{
		DBG1(DBG_CHD, "handset-proxy: CHILD_SA %s{%u}: selectors not "
			 "expressible as CIDR or too many", child_sa->get_name(child_sa),
			 child_sa->get_unique_id(child_sa));
		return NULL;
	}
	me = ike_sa->get_my_host(ike_sa);
	other = ike_sa->get_other_host(ike_sa);
	/* identities print as charon prints them: non-printable octets become '?',
	 * so a peer's identity cannot add lines to a record */
	n = snprintf(head, sizeof(head),
		"ike_name=%s\nchild_name=%s\nike_id=%u\nchild_id=%u\ninitiator=%d\n"
		"local_id=%Y\nremote_id=%Y\nlocal=%H:%u\nremote=%H:%u\n"
		"encr=%s\nmode=%s\nesn=%d\nspi_in=%.8x\nspi_out=%.8x\n",
		ike_sa->get_name(ike_sa), child_sa->get_name(child_sa),
		ike_sa->get_unique_id(ike_sa), child_sa->get_unique_id(child_sa),
		initiator, ike_sa->get_my_id(ike_sa), ike_sa->get_other_id(ike_sa),
		me, me->get_port(me), other, other->get_port(other),
		encr, mode, esn_of(child_sa),
		ntohl(child_sa->get_spi(child_sa, TRUE)),
		ntohl(child_sa->get_spi(child_sa, FALSE)));
	m = snprintf(ts, sizeof(ts), "local_ts=%s\nremote_ts=%s\n", local_ts,
				 remote_ts);
	if (n < 0 || (size_t)n >= sizeof(head) || m < 0 || (size_t)m >= sizeof(ts))
	{
		DBG1(DBG_CHD, "handset-proxy: CHILD_SA %s{%u}: record too long",
			 child_sa->get_name(child_sa), child_sa->get_unique_id(child_sa));
		return NULL;
	}
	INIT(info,
		.head = strdup(head),
		.ts = strdup(ts),
		/* our inbound key is the one the peer encrypts with */
		.key_in = chunk_clone(initiator ? encr_r : encr_i),
		.key_out = chunk_clone(initiator ? encr_i : encr_r),
		.soft = child_sa->get_lifetime(child_sa, FALSE),
		.hard = child_sa->get_lifetime(child_sa, TRUE),
		.spi_out = ntohl(child_sa->get_spi(child_sa, FALSE)),
	);
	return info;
}

static u_int seconds_left(time_t at, time_t now)
{
	return (at && at > now) ? at - now : 0;
}

static void append_hex(char *buf, size_t len, size_t *pos, char *name, chunk_t key)
{
	int n = snprintf(buf + *pos, len - *pos, "%s=", name);

	if (n < 0 || *pos + n + key.len * 2 + 2 > len)
	{
		*pos = len;
		return;
	}
	*pos += n;
	chunk_to_hex(key, buf + *pos, FALSE);
	*pos += key.len * 2;
	buf[(*pos)++] = '\n';
}

/* Sends one record; the buffer that held keys is wiped before returning. */
static bool send_record(private_listener_t *this, char *event, sa_info_t *info)
{
	bool sent = FALSE;

	char buf[RECORD_LEN];
	time_t now = time_monotonic(NULL);
	size_t pos;
	int n;

	n = snprintf(buf, sizeof(buf), "v=1\nevent=%s\n%s", event, info->head);
	pos = (n < 0) ? sizeof(buf) : n;
	if (info->key_in.len && pos < sizeof(buf))
	{
		append_hex(buf, sizeof(buf), &pos, "key_in", info->key_in);
		append_hex(buf, sizeof(buf), &pos, "key_out", info->key_out);
	}
	if (pos < sizeof(buf))
	{
		n = snprintf(buf + pos, sizeof(buf) - pos, "%ssoft=%u\nhard=%u\n",
					 info->ts, seconds_left(info->soft, now),
					 seconds_left(info->hard, now));
		pos = (n < 0) ? sizeof(buf) : pos + n;
	}
	if (pos >= sizeof(buf))
	{
		DBG1(DBG_CHD, "handset-proxy: %s record too long, dropped", event);
	}
	else if (!this->socket->send(this->socket, chunk_create(buf, pos)))
	{
		DBG1(DBG_CHD, "handset-proxy: no key client, %s record dropped", event);
	}
	else
	{
		sent = TRUE;
	}
	memwipe(buf, sizeof(buf));
	return sent;
}

/* Sends the up or rekeyed record of a derived CHILD_SA and keeps it, without keys, for its down. */
static void announce(private_listener_t *this, child_sa_t *child_sa, char *event)
{
	uintptr_t id = child_sa->get_unique_id(child_sa);
	sa_info_t *info;

	this->mutex->lock(this->mutex);
	info = this->pending->remove(this->pending, (void*)id);
	if (info)
	{
		send_record(this, event, info);
		chunk_clear(&info->key_in);
		chunk_clear(&info->key_out);
		info = this->announced->put(this->announced, (void*)id, info);
		if (info)
		{
			sa_info_destroy(info);
		}
	}
	this->mutex->unlock(this->mutex);
}

/*
 * Called by the kernel interface when charon installs the outbound SA of a
 * CHILD_SA whose keys are derived but not yet announced: that only happens in
 * a rekey we initiated (child_rekey.c process_i), just before charon sends
 * the DELETE for the old CHILD_SA. The peer keeps sending on the old SA until
 * that DELETE arrives (it installs its new outbound SA only then), so the
 * rekeyed record goes out now and the DELETE waits until the gateway says the
 * handset has the new SA, at most hold_rekey: make-before-break for the
 * handset, whose keys travel by SMS. No charon lock is held here (unlike in a
 * bus hook, where waiting would stall every IKE_SA); only this IKE_SA waits.
 */
void handset_proxy_listener_hold_rekey(uint32_t spi_out)
{
	private_listener_t *this = active;
	enumerator_t *enumerator;
	sa_info_t *info, *found = NULL;
	void *key;
	bool sent, hold;
	timeval_t start, end;

	if (!this || !this->hold_ms)
	{
		return;
	}
	this->mutex->lock(this->mutex);
	enumerator = this->pending->create_enumerator(this->pending);
	while (enumerator->enumerate(enumerator, &key, &info))
	{
		if (info->spi_out == spi_out)
		{
			this->pending->remove_at(this->pending, enumerator);
			found = info;
			break;
		}
	}
	enumerator->destroy(enumerator);
	if (!found)
	{
		this->mutex->unlock(this->mutex);
		return;
	}
	sent = send_record(this, "rekeyed", found);
	chunk_clear(&found->key_in);
	chunk_clear(&found->key_out);
	info = this->announced->put(this->announced, key, found);
	if (info)
	{
		sa_info_destroy(info);
	}
	hold = sent && this->holding < this->hold_max;
	if (hold)
	{
		this->holding++;
	}
	this->mutex->unlock(this->mutex);
	if (!hold)
	{
		if (sent)
		{
			DBG1(DBG_CHD, "handset-proxy: %u rekeys held already, this one "
				 "is not", this->hold_max);
		}
		return;
	}
	time_monotonic(&start);
	sent = this->socket->wait_installed(this->socket, spi_out, this->hold_ms);
	time_monotonic(&end);
	this->mutex->lock(this->mutex);
	this->holding--;
	this->mutex->unlock(this->mutex);
	DBG1(DBG_CHD, "handset-proxy: rekey held %u ms, %s",
		 (u_int)((end.tv_sec - start.tv_sec) * 1000 +
				 (end.tv_usec - start.tv_usec) / 1000),
		 sent ? "the handset has the new SA" : "no word from the handset");
}

static void retire(private_listener_t *this, child_sa_t *child_sa)
{
	uintptr_t id = child_sa->get_unique_id(child_sa);
	sa_info_t *info;

	this->mutex->lock(this->mutex);
	info = this->pending->remove(this->pending, (void*)id);
	if (info)
	{	/* derived but never up, e.g. the loser of a rekey collision */
		sa_info_destroy(info);
	}
	info = this->announced->remove(this->announced, (void*)id);
	if (info)
	{
		send_record(this, "down", info);
		sa_info_destroy(info);
	}
	this->mutex->unlock(this->mutex);
}

METHOD(listener_t, child_derived_keys, bool,
	private_listener_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	bool initiator, chunk_t encr_i, chunk_t encr_r, chunk_t integ_i,
	chunk_t integ_r)
{
	uintptr_t id = child_sa->get_unique_id(child_sa);
	sa_info_t *info;

	if (integ_i.len || integ_r.len)
	{
		DBG1(DBG_CHD, "handset-proxy: CHILD_SA %s{%u} is not AEAD, no record",
			 child_sa->get_name(child_sa), child_sa->get_unique_id(child_sa));
		return TRUE;
	}
	info = sa_info_create(ike_sa, child_sa, initiator, encr_i, encr_r);
	if (info)
	{
		this->mutex->lock(this->mutex);
		info = this->pending->put(this->pending, (void*)id, info);
		this->mutex->unlock(this->mutex);
		if (info)
		{
			sa_info_destroy(info);
		}
	}
	return TRUE;
}

/*
 * Only with ike_keys = yes (a keylog was asked for): the IKE_SA's SPIs,
 * algorithms (IANA transform IDs) and SK_e/SK_a keys, so that Wireshark can
 * decrypt the proxy's IKE. Never sent otherwise; wiped like the CHILD_SA keys.
 */
METHOD(listener_t, ike_derived_keys, bool,
	private_listener_t *this, ike_sa_t *ike_sa, chunk_t sk_d, chunk_t sk_ai,
	chunk_t sk_ar, chunk_t sk_ei, chunk_t sk_er, chunk_t sk_pi, chunk_t sk_pr)
{
	proposal_t *proposal = ike_sa->get_proposal(ike_sa);
	ike_sa_id_t *id = ike_sa->get_id(ike_sa);
	uint16_t encr = 0, size = 0, integ = 0;
	char buf[RECORD_LEN];
	size_t pos;
	int n;

	if (!this->ike_keys)
	{
		return TRUE;
	}
	if (!proposal ||
		!proposal->get_algorithm(proposal, ENCRYPTION_ALGORITHM, &encr, &size))
	{
		DBG1(DBG_IKE, "handset-proxy: IKE_SA %s[%u] without a proposal, no "
			 "ike_keys record", ike_sa->get_name(ike_sa),
			 ike_sa->get_unique_id(ike_sa));
		return TRUE;
	}
	if (!encryption_algorithm_is_aead(encr))
	{
		proposal->get_algorithm(proposal, INTEGRITY_ALGORITHM, &integ, NULL);
	}
	n = snprintf(buf, sizeof(buf), "v=1\nevent=ike_keys\nike_name=%s\n"
		"ike_id=%u\nspi_i=%.16"PRIx64"\nspi_r=%.16"PRIx64"\nencr=%u\n"
		"encr_keysize=%u\ninteg=%u\n", ike_sa->get_name(ike_sa),
		ike_sa->get_unique_id(ike_sa), be64toh(id->get_initiator_spi(id)),
		be64toh(id->get_responder_spi(id)), encr, size, integ);
	pos = (n < 0) ? sizeof(buf) : n;
	append_hex(buf, sizeof(buf), &pos, "sk_ei", sk_ei);
	append_hex(buf, sizeof(buf), &pos, "sk_er", sk_er);
	append_hex(buf, sizeof(buf), &pos, "sk_ai", sk_ai);
	append_hex(buf, sizeof(buf), &pos, "sk_ar", sk_ar);
	if (pos >= sizeof(buf))
	{
		DBG1(DBG_IKE, "handset-proxy: ike_keys record too long, dropped");
	}
	else if (!this->socket->send(this->socket, chunk_create(buf, pos)))
	{
		DBG1(DBG_IKE, "handset-proxy: no key client, ike_keys record dropped");
	}
	memwipe(buf, sizeof(buf));
	return TRUE;
}

METHOD(listener_t, child_updown, bool,
	private_listener_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa, bool up)
{
	if (up)
	{
		announce(this, child_sa, "up");
	}
	else
	{
		retire(this, child_sa);
	}
	return TRUE;
}

METHOD(listener_t, child_rekey, bool,
	private_listener_t *this, ike_sa_t *ike_sa, child_sa_t *old,
	child_sa_t *new)
{
	announce(this, new, "rekeyed");
	return TRUE;
}

METHOD(listener_t, child_state_change, bool,
	private_listener_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	child_sa_state_t state)
{
	/* destroying, not deleted: a rekeyed SA's inbound stays usable until
	 * charon destroys it (delete_rekeyed_delay) */
	if (state == CHILD_DESTROYING)
	{
		retire(this, child_sa);
	}
	return TRUE;
}

METHOD(handset_proxy_listener_t, destroy, void,
	private_listener_t *this)
{
	if (active == this)
	{
		active = NULL;
	}
	this->pending->destroy_function(this->pending, (void*)sa_info_destroy);
	this->announced->destroy_function(this->announced, (void*)sa_info_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

handset_proxy_listener_t *handset_proxy_listener_create(
										handset_proxy_socket_t *socket)
{
	private_listener_t *this;

	INIT(this,
		.public = {
			.listener = {
				.ike_derived_keys = _ike_derived_keys,
				.child_derived_keys = _child_derived_keys,
				.child_updown = _child_updown,
				.child_rekey = _child_rekey,
				.child_state_change = _child_state_change,
			},
			.destroy = _destroy,
		},
		.socket = socket,
		.pending = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.announced = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 32),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.hold_ms = lib->settings->get_time(lib->settings,
						"%s.plugins.handset-proxy.hold_rekey", 0, lib->ns) * 1000,
		.hold_max = lib->settings->get_int(lib->settings,
						"%s.plugins.handset-proxy.hold_max", 4, lib->ns),
		.ike_keys = lib->settings->get_bool(lib->settings,
						"%s.plugins.handset-proxy.ike_keys", FALSE, lib->ns),
	);
	active = this;
	return &this->public;
}
