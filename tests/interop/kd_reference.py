"""An independent implementation of docs/key-delegation.md §2 (envelope and key derivation), written from the
document with the `cryptography` package. It shares no code with the Swift implementation."""
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"handset-kd v1"


def derive(device_key: bytes, device_id: int, epoch: int, direction: str) -> bytes:
    info = direction.encode() + device_id.to_bytes(8, "big") + epoch.to_bytes(2, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=info).derive(device_key)


def header(msg_type: int, epoch: int, counter: int, device_id: int | None) -> bytes:
    h = bytes([1, msg_type]) + epoch.to_bytes(2, "big") + counter.to_bytes(5, "big")
    return h + device_id.to_bytes(8, "big") if device_id is not None else h


def seal(device_key: bytes, device_id: int, epoch: int, direction: str, msg_type: int, counter: int, body: bytes) -> bytes:
    k = derive(device_key, device_id, epoch, direction)
    h = header(msg_type, epoch, counter, device_id if direction == "up" else None)
    nonce = bytes(7) + counter.to_bytes(5, "big")
    return h + AESGCM(k).encrypt(nonce, body, h)


def open_(device_key: bytes, device_id: int, direction: str, message: bytes) -> tuple[int, int, bytes]:
    hlen = 17 if direction == "up" else 9
    h = message[:hlen]
    assert h[0] == 1
    epoch = int.from_bytes(h[2:4], "big")
    counter = int.from_bytes(h[4:9], "big")
    k = derive(device_key, device_id, epoch, direction)
    nonce = bytes(7) + counter.to_bytes(5, "big")
    return h[1], counter, AESGCM(k).decrypt(nonce, message[hlen:], h)


COUNTER_MAX = (1 << 40) - 1

# §4 status codes, as the error and sa-ack bodies carry them.
STATUS = {
    "ok": 0, "counter low": 1, "counter high": 2, "counter blocked": 3, "integrity failure": 4, "unknown device": 5,
    "bad message": 6, "denied": 7, "busy": 8, "fetch failed": 9, "unknown epoch": 10, "no proposal chosen": 11,
    "authentication failed": 12, "peer timeout": 13, "peer unreachable": 14,
}


def check_counter(received: int, last_accepted: int) -> str:
    """§3's receiving rule, from the document: strictly increasing, however far ahead, never past the end."""
    if last_accepted >= COUNTER_MAX:
        return "blocked"
    if received <= last_accepted:
        return "low"
    return "ok"


# §6: what an sa-transfer may cover. A selector is (remote address as int, prefix, proto, (lo, hi) local ports,
# (lo, hi) remote ports), IPv4; a request is (remote, proto, local port, remote port) with 0 = any.
ANY = (0, 65535)
PUSHED_PAIRS_PER_PEER = 4


def _matches(a: int, b: int, prefix: int) -> bool:
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF if prefix else 0
    return a & mask == b & mask


def within_request(sel, request) -> bool:
    remote, prefix, proto, lports, rports = sel
    r_remote, r_proto, r_lport, r_rport = request
    return (prefix == 32 and remote == r_remote and (r_proto == 0 or proto == r_proto)
            and (r_lport == 0 or lports == (r_lport, r_lport)) and (r_rport == 0 or rports == (r_rport, r_rport)))


def within_rule(sel, rule) -> bool:
    remote, prefix, proto, lports, rports = sel
    g_remote, g_prefix, g_proto, g_lports, g_rports = rule
    return (g_prefix <= prefix and _matches(g_remote, remote, g_prefix) and (g_proto == 0 or g_proto == proto)
            and g_lports[0] <= lports[0] and lports[1] <= g_lports[1]
            and g_rports[0] <= rports[0] and rports[1] <= g_rports[1])


def sa_transfer_status(sel, *, ipv6=False, request=None, protect_rules=(), pushed_from_peer=0,
                       same_flow_pushed=False) -> int:
    """The sa-ack status: 0 ok, 7 denied, 8 busy. `request` is the pending request answered (None: a push)."""
    if ipv6:
        return 7
    if request is not None:
        return 0 if within_request(sel, request) else 7
    if not any(within_rule(sel, r) for r in protect_rules):
        return 7
    return 0 if pushed_from_peer < PUSHED_PAIRS_PER_PEER or same_flow_pushed else 8


# §4: sa-transfer body length. Flag bit 6 appends the pair's remote address (same family as the peer), flag bit 7
# the handset's inner address chosen by the opposite party (always IPv4, 4 octets).
SA_REMOTE_PRESENT = 64
SA_HANDSET_PRESENT = 128


def sa_transfer_length(flags: int) -> int:
    addr = 16 if flags & 16 else 4
    return (2 + 1 + 2 * (4 + 32 + 4) + addr + 2 + 1 + 1 + 2 + 2 + 4 + 4 + (addr if flags & SA_REMOTE_PRESENT else 0)
            + (4 if flags & SA_HANDSET_PRESENT else 0))


def usable_inner_address(a: int) -> bool:
    """§4/§6: an inner address is IPv4 unicast, not 0.0.0.0, not loopback (127/8), below 224.0.0.0."""
    return a != 0 and a >> 24 != 127 and a >> 28 < 14


def decode_sa_transfer(body: bytes):
    """§4: the fields of an sa-transfer body as a dict, or None when the handset must refuse it as malformed."""
    if len(body) < 3:
        return None
    request_id, flags = int.from_bytes(body[0:2], "big"), body[2]
    if len(body) != sa_transfer_length(flags):
        return None
    alen = 16 if flags & 16 else 4
    at = 3

    def take(n: int) -> bytes:
        nonlocal at
        at += n
        return body[at - n:at]

    def num(n: int) -> int:
        return int.from_bytes(take(n), "big")

    out_spi, out_key, out_salt = num(4), take(32), num(4)
    in_spi, in_key, in_salt = num(4), take(32), num(4)
    algorithm = sa_transfer_algorithm(flags, out_key, in_key)
    if algorithm is None:
        return None
    peer, peer_port, prefix, proto = num(alen), num(2), num(1), num(1)
    local_port, remote_port, soft, hard = num(2), num(2), num(4), num(4)
    remote = num(alen) if flags & SA_REMOTE_PRESENT else None
    handset = num(4) if flags & SA_HANDSET_PRESENT else None
    if handset is not None and not usable_inner_address(handset):
        return None
    if prefix > alen * 8 or out_spi <= 255 or in_spi <= 255 or (hard != 0 and soft > hard):
        return None
    return {"request_id": request_id, "algorithm": algorithm[0], "key_length": algorithm[1], "tunnel": bool(flags & 4),
            "esn": bool(flags & 8), "implicit_iv": bool(flags & 32), "out_spi": out_spi, "out_key": out_key[:algorithm[1]],
            "out_salt": out_salt, "in_spi": in_spi, "in_key": in_key[:algorithm[1]], "in_salt": in_salt, "peer": peer,
            "peer_port": peer_port, "prefix": prefix, "proto": proto, "local_port": local_port,
            "remote_port": remote_port, "soft": soft, "hard": hard, "remote": remote, "handset": handset}


def sa_transfer_algorithm(flags: int, out_key: bytes, in_key: bytes):
    """§4: (algorithm, key length) from flag bits 0-1 and the two 32-octet key fields, or None when refused."""
    kind = flags & 3
    if kind == 3 or len(out_key) != 32 or len(in_key) != 32:
        return None
    if kind == 2:
        return ("AES-128-GCM", 16) if not any(out_key[16:]) and not any(in_key[16:]) else None
    return ("ChaCha20-Poly1305", 32) if kind == 1 else ("AES-256-GCM", 32)


def pair_remote(peer: int, remote: int | None) -> int:
    """§4: the pair's remote selector address: the remote address when flag bit 6 carries one, else the peer."""
    return peer if remote is None else remote

