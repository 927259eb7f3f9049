"""Helpers for the ESP interop tests: run `handset-emu esp ...`, and an independent ESP reference built on the
`cryptography` package (RFC 4303 framing, RFC 4106 / RFC 7634 nonce and AAD, RFC 8750 implicit IV)."""

import os
import struct
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))

ICV = {"aes-gcm-16": 16, "aes-gcm-12": 12, "aes-gcm-8": 8, "chacha20-poly1305": 16}


class EmuError(Exception):
    """handset-emu exited non-zero; carries its stderr."""


def emu(*args):
    """Runs handset-emu; returns stdout lines, raises EmuError (with stderr) on a non-zero exit."""
    r = subprocess.run([EMU, *map(str, args)], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise EmuError(f"exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.splitlines()


def sa_flags(alg, key, salt, spi, seq, esn=False, iiv=False):
    f = ["--alg", alg, "--key", key.hex(), "--salt", salt.hex(), "--spi", spi, "--seq", seq]
    if esn:
        f.append("--esn")
    if iiv:
        f.append("--iiv")
    return f


def emu_seal(alg, key, salt, spi, seq, next_header, payload, esn=False, iiv=False, iv=None):
    extra = ["--iv", iv.hex()] if iv is not None else []
    lines = emu("esp", "seal", *sa_flags(alg, key, salt, spi, seq, esn, iiv), *extra,
                "--next-header", next_header, payload.hex())
    assert len(lines) == 1, lines
    return bytes.fromhex(lines[0])


def emu_open(alg, key, salt, spi, seq, packet, esn=False, iiv=False):
    lines = emu("esp", "open", *sa_flags(alg, key, salt, spi, seq, esn, iiv), packet.hex())
    assert len(lines) == 2 and lines[0].startswith("next-header: ") and lines[1].startswith("payload: "), lines
    return int(lines[0].split(": ")[1]), bytes.fromhex(lines[1].split(": ", 1)[1])


def flow_flags(mode, src, dst, sport, dport, tunnel_src=None, tunnel_dst=None):
    f = ["--mode", mode, "--src", src, "--dst", dst, "--sport", sport, "--dport", dport]
    if tunnel_src:
        f += ["--tunnel-src", tunnel_src]
    if tunnel_dst:
        f += ["--tunnel-dst", tunnel_dst]
    return f


def emu_seal_udp(sa, flow, payload):
    lines = emu("esp", "seal-udp", *sa, *flow, payload.hex())
    assert len(lines) == 1, lines
    return bytes.fromhex(lines[0])


def emu_open_udp(sa, flow, packet):
    lines = emu("esp", "open-udp", *sa, *flow, packet.hex())
    fields = dict(line.split(": ", 1) for line in lines)
    assert list(fields) == ["src", "dst", "sport", "dport", "payload"], lines
    return fields["src"], fields["dst"], int(fields["sport"]), int(fields["dport"]), bytes.fromhex(fields["payload"])


# ---- independent reference (cryptography) ----

def _pad(payload, next_header):
    n = (4 - (len(payload) + 2) % 4) % 4  # RFC 4303 §2.4, AEAD block size 1
    return payload + bytes(range(1, n + 1)) + bytes([n, next_header])


def _aad(spi, seq, esn):
    return struct.pack("!LLL", spi, seq >> 32, seq & 0xFFFFFFFF) if esn else struct.pack("!LL", spi, seq & 0xFFFFFFFF)


def ref_seal(alg, key, salt, spi, seq, next_header, payload, esn=False, iiv=False, iv=None):
    """ESP packet (SPI..ICV). Nonce = salt || IV; with RFC 8750 the IV is the 64-bit sequence number, unsent."""
    iv = struct.pack("!Q", seq) if iiv or iv is None else iv
    icv = ICV[alg]
    plain = _pad(payload, next_header)
    aad = _aad(spi, seq, esn)
    if alg == "chacha20-poly1305":
        ct = ChaCha20Poly1305(key).encrypt(salt + iv, plain, aad)
    else:
        ct = AESGCM(key).encrypt(salt + iv, plain, aad)
        ct = ct[: len(ct) - 16 + icv]  # truncated ICV (RFC 4106 §6)
    return struct.pack("!LL", spi, seq & 0xFFFFFFFF) + (b"" if iiv else iv) + ct


def ref_open(alg, key, salt, spi, seq, packet, esn=False, iiv=False):
    """(next_header, payload); raises on authentication failure. `seq` is the full number the packet carries."""
    icv = ICV[alg]
    assert struct.unpack("!L", packet[:4])[0] == spi
    assert struct.unpack("!L", packet[4:8])[0] == seq & 0xFFFFFFFF
    if iiv:
        iv, body = struct.pack("!Q", seq), packet[8:]
    else:
        iv, body = packet[8:16], packet[16:]
    ct, tag = body[:-icv], body[-icv:]
    aad = _aad(spi, seq, esn)
    if alg == "chacha20-poly1305":
        plain = ChaCha20Poly1305(key).decrypt(salt + iv, ct + tag, aad)
    else:
        d = Cipher(algorithms.AES(key), modes.GCM(salt + iv, tag, min_tag_length=icv)).decryptor()
        d.authenticate_additional_data(aad)
        plain = d.update(ct) + d.finalize()
    pad_len, nh = plain[-2], plain[-1]
    assert plain[-2 - pad_len:-2] == bytes(range(1, pad_len + 1)), "bad padding"
    return nh, plain[: -2 - pad_len]
