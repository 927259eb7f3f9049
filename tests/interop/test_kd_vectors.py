"""Checks docs/key-delegation.md §8 against an independent implementation (kd_reference.py, Python `cryptography`)."""
import pathlib
import re

import kd_reference as kd

DOC = (pathlib.Path(__file__).parents[2] / "docs" / "key-delegation.md").read_text().split("## 8. Test vectors")[1]


def field(name: str) -> list[str]:
    # A value may go on over indented lines of hex.
    return ["".join(m.split()) for m in re.findall(rf"^{name}\s+(.+(?:\n\s+[0-9a-f]+)*)$", DOC, re.M)]


DEVICE_KEY = bytes.fromhex(field("device key")[0])
DEVICE_ID = int(field("device id")[0], 16)


def test_key_derivation():
    assert kd.derive(DEVICE_KEY, DEVICE_ID, 1, "up").hex() == field("K_up")[0]
    assert kd.derive(DEVICE_KEY, DEVICE_ID, 1, "down").hex() == field("K_down")[0]


def test_sealed_messages():
    bodies = [bytes.fromhex(b) for b in field("body")]
    messages = [bytes.fromhex(m) for m in field("message")]
    assert kd.seal(DEVICE_KEY, DEVICE_ID, 1, "up", 0x01, 5, bodies[0]) == messages[0]
    assert kd.seal(DEVICE_KEY, DEVICE_ID, 1, "down", 0x04, 9, bodies[1]) == messages[1]
    assert kd.open_(DEVICE_KEY, DEVICE_ID, "up", messages[0]) == (0x01, 5, bodies[0])


def test_sa_pair_fits_one_sms():
    # §4: a 103-octet IPv4 sa-transfer body sealed downlink, plus the 7-octet port UDH, within 140 octets.
    assert kd.sa_transfer_length(0) == 103 and kd.sa_transfer_length(16) == 115
    sealed = kd.seal(DEVICE_KEY, DEVICE_ID, 1, "down", 0x11, 1, bytes(103))
    assert len(sealed) == 128 and len(sealed) + 7 <= 140
    # With the remote address (flag bit 6) it is 107 octets: still one SMS.
    assert kd.sa_transfer_length(kd.SA_REMOTE_PRESENT | 4) == 107
    sealed = kd.seal(DEVICE_KEY, DEVICE_ID, 1, "down", 0x11, 1, bytes(107))
    assert len(sealed) == 132 and len(sealed) + 7 <= 140


def test_sa_transfer_with_a_handset_address():
    # §8 vector: a sealed sa-transfer whose handset address (flag bit 7) the server's pool chose.
    body, message = bytes.fromhex(field("transfer")[0]), bytes.fromhex(field("sealed")[0])
    assert kd.open_(DEVICE_KEY, DEVICE_ID, "down", message) == (0x11, 10, body)
    t = kd.decode_sa_transfer(body)
    assert t is not None
    assert (t["algorithm"], t["tunnel"], t["request_id"]) == ("AES-128-GCM", True, 7)
    assert (t["out_spi"], t["in_spi"], t["remote_port"], t["proto"]) == (0xC1000001, 0xC2000002, 7, 17)
    assert t["peer"] == 0xC0000201 and t["remote"] == 0x0AC80001 and t["handset"] == 0x0ACA0701
    # 111 octets, 136 sealed: with the port UDH it no longer fits one SMS (§1: two concatenated parts).
    assert len(body) == kd.sa_transfer_length(kd.SA_REMOTE_PRESENT | kd.SA_HANDSET_PRESENT) == 111
    assert len(message) == 136 and len(message) + 7 > 140
    # Without the remote address it is 107 octets: one SMS.
    assert kd.sa_transfer_length(kd.SA_HANDSET_PRESENT) == 107
    # A handset address no handset may hold is malformed: 0.0.0.0, loopback, multicast.
    for bad in (bytes(4), bytes([127, 0, 0, 1]), bytes([224, 0, 0, 1])):
        assert kd.decode_sa_transfer(body[:-4] + bad) is None
    # A truncated body (flag bit 7 set, address missing) is refused.
    assert kd.decode_sa_transfer(body[:-4]) is None


def test_sa_transfer_algorithms():
    # §4: flag bits 0-1 name the algorithm; AES-128-GCM keys fill half their field and the rest must be zero.
    k32, k16 = bytes(range(1, 33)), bytes(range(1, 17)) + bytes(16)
    assert kd.sa_transfer_algorithm(0, k32, k32) == ("AES-256-GCM", 32)
    assert kd.sa_transfer_algorithm(1 | 4, k32, k32) == ("ChaCha20-Poly1305", 32)
    assert kd.sa_transfer_algorithm(2, k16, k16) == ("AES-128-GCM", 16)
    assert kd.sa_transfer_algorithm(2, k16, k32) is None
    assert kd.sa_transfer_algorithm(3, k32, k32) is None
    assert "2 = AES-128-GCM" in (pathlib.Path(__file__).parents[2] / "docs" / "key-delegation.md").read_text()


def test_counter_rule():
    rows = re.findall(r"^rule\s+([0-9a-f]{10})\s+([0-9a-f]{10})\s+(\w+)$", DOC, re.M)
    assert len(rows) >= 8
    for last, received, verdict in rows:
        assert kd.check_counter(int(received, 16), int(last, 16)) == verdict, (last, received)


def test_status_codes_match_the_document():
    full = (pathlib.Path(__file__).parents[2] / "docs" / "key-delegation.md").read_text()
    line = " ".join(full.split("Status codes: ")[1].split(".")[0].split())
    listed = {name: int(code) for code, name in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", line)}
    assert listed == kd.STATUS

