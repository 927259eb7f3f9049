"""ESP interop in both directions: `handset-emu esp ...` against scapy's ESP (AES-GCM-16 with 128/256-bit keys,
ChaCha20-Poly1305; transport and tunnel; ESP-in-UDP, RFC 3948; ESN) and, where scapy cannot follow (8- and
12-byte GCM ICVs: scapy 2.8 ignores crypt_icv_size when it encrypts; RFC 8750 implicit IV), against an
independent reference built on the `cryptography` package (esp_oracle.py)."""

import os
import struct

import pytest
from scapy.all import IP, UDP, IPv6, Raw, raw
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation

from esp_oracle import (EmuError, emu, emu_open, emu_open_udp, emu_seal, emu_seal_udp, flow_flags, ref_open,
                        ref_seal, sa_flags)

SPI = 0x0000C0DE
HANDSET, PEER = "10.0.0.2", "192.0.2.1"
HANDSET6, PEER6 = "2001:db8::2", "2001:db8:1::1"
T_HANDSET, T_PEER = "100.64.0.2", "198.51.100.1"  # tunnel endpoints when they differ from the inner addresses
H_PORT, P_PORT = 5000, 7000

# (tool name, scapy name, key length)
SCAPY_ALGS = [("aes-gcm-16", "AES-GCM", 16), ("aes-gcm-16", "AES-GCM", 32), ("chacha20-poly1305", "CHACHA20-POLY1305", 32)]
ALG_IDS = ["aes128gcm", "aes256gcm", "chacha20poly1305"]
# (esn, full sequence number)
SEQS = [(False, 1), (False, 0xFFFFFFF0), (True, 0x0000_0001_0000_0007), (True, 0xDEAD_BEEF_FFFF_FFFE)]
SEQ_IDS = ["seq1", "seq-high32", "esn-carry", "esn-big"]
PAYLOADS = [b"", b"x", b"hello handset", bytes(range(256)) * 5 + b"tail"]


def keys(n):
    return os.urandom(n), os.urandom(4)


def scapy_sa(alg, key, salt, seq, esn, tunnel=None):
    return SecurityAssociation(ESP, spi=SPI, seq_num=seq & 0xFFFFFFFF, crypt_algo=alg, crypt_key=key + salt,
                               auth_algo="NULL", tunnel_header=tunnel, nat_t_header=UDP(sport=4500, dport=4500),
                               esn_en=esn, esn=seq >> 32)


def outer(src, dst, esp_bytes):
    """What the module's socket would put on the air: IP/UDP(4500)/ESP, re-dissected so scapy sees ESP."""
    if ":" in src:
        return IPv6(raw(IPv6(src=src, dst=dst) / UDP(sport=4500, dport=4500) / Raw(esp_bytes)))
    return IP(raw(IP(src=src, dst=dst) / UDP(sport=4500, dport=4500) / Raw(esp_bytes)))


def checksums_valid(pkt):
    """Recomputes the IPv4 header and UDP checksums of a decrypted packet and compares with what was sent."""
    ip = pkt[IP] if IP in pkt else pkt[IPv6]
    sent_udp = pkt[UDP].chksum
    fresh = ip.copy()
    del fresh[UDP].chksum
    if IP in pkt:
        sent_ip = ip.chksum
        del fresh.chksum
        fresh = IP(raw(fresh))
        return fresh.chksum == sent_ip and fresh[UDP].chksum == sent_udp
    fresh = IPv6(raw(fresh))
    return fresh[UDP].chksum == sent_udp


# ---- (a) handset seals, scapy decrypts ----

@pytest.mark.parametrize("esn,seq", SEQS, ids=SEQ_IDS)
@pytest.mark.parametrize("tool_alg,scapy_alg,klen", SCAPY_ALGS, ids=ALG_IDS)
@pytest.mark.parametrize("mode", ["transport", "tunnel"])
def test_handset_seal_udp_scapy_decrypts(mode, tool_alg, scapy_alg, klen, esn, seq):
    key, salt = keys(klen)
    payload = b"ping from the handset %d" % seq
    tunnel = mode == "tunnel"
    flow = flow_flags(mode, HANDSET, PEER, H_PORT, P_PORT, *((T_HANDSET, T_PEER) if tunnel else ()))
    esp = emu_seal_udp(sa_flags(tool_alg, key, salt, SPI, seq, esn), flow, payload)

    src, dst = (T_HANDSET, T_PEER) if tunnel else (HANDSET, PEER)
    sa = scapy_sa(scapy_alg, key, salt, seq, esn, IP(src=T_HANDSET, dst=T_PEER) if tunnel else None)
    clear = sa.decrypt(outer(src, dst, esp))
    inner = clear[IP]
    assert (inner.src, inner.dst) == (HANDSET, PEER)
    assert (clear[UDP].sport, clear[UDP].dport) == (H_PORT, P_PORT)
    assert bytes(clear[UDP].payload) == payload
    assert clear[UDP].len == 8 + len(payload)
    assert checksums_valid(clear)

    if not tunnel:
        # Same SA, same IV (the default: the 64-bit sequence number): scapy's own ciphertext must be ours, byte for byte.
        twin = scapy_sa(scapy_alg, key, salt, seq, esn).encrypt(
            IP(src=HANDSET, dst=PEER) / UDP(sport=H_PORT, dport=P_PORT) / Raw(payload), iv=struct.pack("!Q", seq))
        assert bytes(twin[UDP].payload) == esp


@pytest.mark.parametrize("tool_alg,scapy_alg,klen", SCAPY_ALGS, ids=ALG_IDS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=["empty", "1", "13", "1284"])
def test_handset_seal_bare_esp_scapy_decrypts(tool_alg, scapy_alg, klen, payload):
    key, salt = keys(klen)
    # Bare ESP carrying a whole IPv4 packet (next header 4), as a tunnel would.
    inner = raw(IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=1, dport=2) / Raw(payload))
    esp = emu_seal(tool_alg, key, salt, SPI, 42, 4, inner)
    clear = scapy_sa(scapy_alg, key, salt, 42, False, IP(src=T_HANDSET, dst=T_PEER)).decrypt(outer(T_HANDSET, T_PEER, esp))
    assert raw(clear) == inner


def test_scapy_rejects_tampered_handset_packet():
    key, salt = keys(16)
    esp = bytearray(emu_seal("aes-gcm-16", key, salt, SPI, 9, 17, b"\x00" * 8 + b"payload"))
    esp[20] ^= 0x40
    with pytest.raises(IPSecIntegrityError):
        scapy_sa("AES-GCM", key, salt, 9, False).decrypt(outer(HANDSET, PEER, bytes(esp)))


# ---- (b) scapy encrypts, handset opens ----

@pytest.mark.parametrize("esn,seq", SEQS, ids=SEQ_IDS)
@pytest.mark.parametrize("tool_alg,scapy_alg,klen", SCAPY_ALGS, ids=ALG_IDS)
@pytest.mark.parametrize("mode", ["transport", "tunnel"])
def test_scapy_encrypts_handset_opens_udp(mode, tool_alg, scapy_alg, klen, esn, seq):
    key, salt = keys(klen)
    payload = b"pong from the peer %d" % seq
    tunnel = mode == "tunnel"
    sa = scapy_sa(scapy_alg, key, salt, seq, esn, IP(src=T_PEER, dst=T_HANDSET) if tunnel else None)
    enc = sa.encrypt(IP(src=PEER, dst=HANDSET) / UDP(sport=P_PORT, dport=H_PORT) / Raw(payload))  # random IV
    esp = bytes(enc[UDP].payload)
    assert esp[:4] == struct.pack("!L", SPI)

    flow = flow_flags(mode, PEER, HANDSET, P_PORT, H_PORT, *((T_PEER, T_HANDSET) if tunnel else ()))
    got = emu_open_udp(sa_flags(tool_alg, key, salt, SPI, seq, esn), flow, esp)
    assert got == (PEER, HANDSET, P_PORT, H_PORT, payload)


@pytest.mark.parametrize("mode", ["transport", "tunnel"])
def test_ipv6_both_directions(mode):
    key, salt = keys(16)
    tunnel = mode == "tunnel"
    # Handset -> peer.
    flow = flow_flags(mode, HANDSET6, PEER6, H_PORT, P_PORT, *((T_HANDSET, T_PEER) if tunnel else ()))
    esp = emu_seal_udp(sa_flags("aes-gcm-16", key, salt, SPI, 3), flow, b"v6 out")
    sa = scapy_sa("AES-GCM", key, salt, 3, False, IP(src=T_HANDSET, dst=T_PEER) if tunnel else None)
    clear = sa.decrypt(outer(*((T_HANDSET, T_PEER) if tunnel else (HANDSET6, PEER6)), esp))
    assert (clear[IPv6].src, clear[IPv6].dst, clear[UDP].dport) == (HANDSET6, PEER6, P_PORT)
    assert bytes(clear[UDP].payload) == b"v6 out"
    assert checksums_valid(clear)
    # Peer -> handset.
    sa = scapy_sa("AES-GCM", key, salt, 4, False, IP(src=T_PEER, dst=T_HANDSET) if tunnel else None)
    enc = sa.encrypt(IPv6(src=PEER6, dst=HANDSET6) / UDP(sport=P_PORT, dport=H_PORT) / Raw(b"v6 in"))
    flow = flow_flags(mode, PEER6, HANDSET6, P_PORT, H_PORT, *((T_PEER, T_HANDSET) if tunnel else ()))
    got = emu_open_udp(sa_flags("aes-gcm-16", key, salt, SPI, 4), flow, bytes(enc[UDP].payload))
    assert got == (PEER6, HANDSET6, P_PORT, H_PORT, b"v6 in")


@pytest.mark.parametrize("tool_alg,scapy_alg,klen", SCAPY_ALGS, ids=ALG_IDS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=["empty", "1", "13", "1284"])
def test_scapy_encrypts_handset_opens_bare_esp(tool_alg, scapy_alg, klen, payload):
    key, salt = keys(klen)
    seq = 0x0000_0002_0000_0011
    sa = scapy_sa(scapy_alg, key, salt, seq, True, IP(src=T_PEER, dst=T_HANDSET))
    pkt = IP(src="10.2.2.2", dst="10.1.1.1") / UDP(sport=2, dport=1) / Raw(payload)
    esp = bytes(sa.encrypt(pkt)[UDP].payload)
    nh, got = emu_open(tool_alg, key, salt, SPI, seq, esp, esn=True)
    assert (nh, got) == (4, raw(pkt))


def test_handset_rejects_tampered_scapy_packet():
    key, salt = keys(32)
    sa = scapy_sa("CHACHA20-POLY1305", key, salt, 5, False)
    esp = bytearray(bytes(sa.encrypt(IP(src=PEER, dst=HANDSET) / UDP(sport=1, dport=2) / Raw(b"abc"))[UDP].payload))
    assert emu_open("chacha20-poly1305", key, salt, SPI, 5, bytes(esp))[0] == 17
    esp[-1] ^= 1
    with pytest.raises(EmuError, match="authentication failed"):
        emu_open("chacha20-poly1305", key, salt, SPI, 5, bytes(esp))


# ---- truncated GCM ICVs and RFC 8750 implicit IV, against `cryptography` ----

@pytest.mark.parametrize("esn,seq", SEQS, ids=SEQ_IDS)
@pytest.mark.parametrize("alg", ["aes-gcm-8", "aes-gcm-12"])
@pytest.mark.parametrize("klen", [16, 32])
def test_truncated_icv_against_cryptography(alg, klen, esn, seq):
    key, salt = keys(klen)
    for payload in PAYLOADS:
        iv = os.urandom(8)
        ours = emu_seal(alg, key, salt, SPI, seq, 17, payload, esn=esn, iv=iv)
        assert ours == ref_seal(alg, key, salt, SPI, seq, 17, payload, esn=esn, iv=iv)
        assert ref_open(alg, key, salt, SPI, seq, ours, esn=esn) == (17, payload)
        theirs = ref_seal(alg, key, salt, SPI, seq, 41, payload, esn=esn, iv=os.urandom(8))
        assert emu_open(alg, key, salt, SPI, seq, theirs, esn=esn) == (41, payload)
    # The full 16-byte tag cut to the wrong length must not verify.
    bad = ref_seal("aes-gcm-16", key, salt, SPI, seq, 17, b"x", esn=esn)
    with pytest.raises(EmuError):
        emu_open(alg, key, salt, SPI, seq, bad, esn=esn)


@pytest.mark.parametrize("esn,seq", SEQS, ids=SEQ_IDS)
@pytest.mark.parametrize("alg,klen", [("aes-gcm-16", 16), ("aes-gcm-16", 32), ("aes-gcm-12", 16), ("aes-gcm-8", 32),
                                      ("chacha20-poly1305", 32)])
def test_implicit_iv_rfc8750_against_cryptography(alg, klen, esn, seq):
    key, salt = keys(klen)
    payload = b"implicit iv %d" % seq
    ours = emu_seal(alg, key, salt, SPI, seq, 17, payload, esn=esn, iiv=True)
    assert len(ours) == 8 + len(payload) + (4 - (len(payload) + 2) % 4) % 4 + 2 + {"aes-gcm-8": 8, "aes-gcm-12": 12}.get(alg, 16)
    assert ours == ref_seal(alg, key, salt, SPI, seq, 17, payload, esn=esn, iiv=True)
    theirs = ref_seal(alg, key, salt, SPI, seq, 4, payload, esn=esn, iiv=True)
    assert emu_open(alg, key, salt, SPI, seq, theirs, esn=esn, iiv=True) == (4, payload)
    # An explicit-IV SA cannot read it.
    with pytest.raises(EmuError):
        emu_open(alg, key, salt, SPI, seq, theirs, esn=esn)


@pytest.mark.parametrize("alg,klen", [("aes-gcm-16", 16), ("aes-gcm-16", 32), ("chacha20-poly1305", 32)])
def test_default_iv_is_sequence_number(alg, klen):
    key, salt = keys(klen)
    seq = 0x0000_0003_8000_0000
    ours = emu_seal(alg, key, salt, SPI, seq, 59, b"", esn=True)
    assert ours[8:16] == struct.pack("!Q", seq)
    assert ours == ref_seal(alg, key, salt, SPI, seq, 59, b"", esn=True)


# ---- the tool's contract: nothing on stdout, non-zero exit, a message on failure ----

@pytest.mark.parametrize("args,message", [
    (["--alg", "aes-gcm-16", "--key", "zz" * 16, "--salt", "00" * 4, "--spi", "300", "--seq", "1"], "not hex"),
    (["--alg", "aes-gcm-16", "--key", "00" * 24, "--salt", "00" * 4, "--spi", "300", "--seq", "1"], "16 or 32 bytes"),
    (["--alg", "chacha20-poly1305", "--key", "00" * 16, "--salt", "00" * 4, "--spi", "300", "--seq", "1"], "32 bytes"),
    (["--alg", "aes-gcm-16", "--key", "00" * 16, "--salt", "00" * 3, "--spi", "300", "--seq", "1"], "4 bytes"),
    (["--alg", "aes-gcm-16", "--key", "00" * 16, "--salt", "00" * 4, "--spi", "7", "--seq", "1"], "256 or more"),
    (["--alg", "aes-gcm-16", "--key", "00" * 16, "--salt", "00" * 4, "--spi", "300", "--seq", "0x100000000"], "--esn"),
    (["--alg", "aes-gcm-4", "--key", "00" * 16, "--salt", "00" * 4, "--spi", "300", "--seq", "1"], "aes-gcm-4"),
])
def test_seal_errors(args, message):
    import subprocess
    from esp_oracle import EMU
    r = subprocess.run([EMU, "esp", "seal", *args, "--next-header", "17", "00"], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stdout == ""
    assert message in r.stderr


def test_open_error_leaves_stdout_empty():
    import subprocess
    from esp_oracle import EMU
    key, salt = keys(16)
    good = ref_seal("aes-gcm-16", key, salt, SPI, 1, 17, b"abc")
    r = subprocess.run([EMU, "esp", "open", *map(str, sa_flags("aes-gcm-16", key, salt, SPI + 1, 1)), good.hex()],
                       capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == "" and "unknown SPI" in r.stderr
    assert emu("esp", "open", *sa_flags("aes-gcm-16", key, salt, SPI, 1), good.hex()) == ["next-header: 17", "payload: 616263"]
