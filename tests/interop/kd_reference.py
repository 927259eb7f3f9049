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


def check_counter(received: int, last_accepted: int) -> str:
    """§3's receiving rule, from the document: strictly increasing, however far ahead, never past the end."""
    if last_accepted >= COUNTER_MAX:
        return "blocked"
    if received <= last_accepted:
        return "low"
    return "ok"
