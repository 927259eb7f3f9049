"""End to end: `handset-emu run` with every scenario, then its Internet-side capture is checked by code no one here
wrote. tshark decrypts it with the keylog (Wireshark's esp_sa table), and scapy decrypts every packet with the same
keys. The test asserts that every packet authenticates, that no (key, nonce) pair repeats, that sequence numbers
increase, and that nothing protected appears in clear.

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import csv
import os
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.utils import rdpcap

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu")
    args = [EMU, "run", "--pcap", str(d / "cap.pcap"), "--keylog", str(d / "esp_sa"), "--duration", "9"]
    if os.environ.get("HANDSET_FIRMWARE"):
        args += ["--firmware", os.environ["HANDSET_FIRMWARE"]]
    if os.environ.get("HANDSET_QEMU"):
        args += ["--qemu", os.environ["HANDSET_QEMU"]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    return d, r


def keylog(d):
    with open(d / "esp_sa") as f:
        return {int(row[3], 16): bytes.fromhex(row[5][2:]) for row in csv.reader(f)}


def test_every_scenario_passes(run):
    _, r = run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 failed" in r.stdout


def test_scapy_authenticates_every_packet_with_the_keylog(run):
    d, _ = run
    keys = keylog(d)
    packets = rdpcap(str(d / "cap.pcap"))
    assert len(packets) >= 20
    seen_nonces, last_seq, decrypted = set(), {}, 0
    for p in packets:
        raw = bytes(p[UDP].payload)
        spi, seq = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
        assert spi in keys, f"packet with SPI {spi:#x} has no key in the keylog"
        # Nonce = salt || IV; one key per SPI, so (SPI, IV) must never repeat.
        nonce = (spi, raw[8:16])
        assert nonce not in seen_nonces, f"(key, nonce) reused: SPI {spi:#x}"
        seen_nonces.add(nonce)
        assert seq > last_seq.get(spi, 0), f"sequence number did not increase on SPI {spi:#x}"
        last_seq[spi] = seq
        sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=keys[spi], auth_algo="NULL")
        inner = sa.decrypt(IP(src=p[IP].src, dst=p[IP].dst) / ESP(raw))  # raises if the ICV does not verify
        decrypted += 1
        assert inner is not None
    assert decrypted == len(packets)


def test_tshark_decrypts_the_capture_with_the_keylog(run, tmp_path):
    d, _ = run
    conf = tmp_path / ".config" / "wireshark"
    conf.mkdir(parents=True)
    (conf / "esp_sa").write_text((d / "esp_sa").read_text())
    ports = {int(p[UDP].dport) for p in rdpcap(str(d / "cap.pcap"))} | {int(p[UDP].sport) for p in rdpcap(str(d / "cap.pcap"))}
    decode = [a for port in ports if port != 4500 for a in ("-d", f"udp.port=={port},udpencap")]
    out = subprocess.run(["tshark", "-r", str(d / "cap.pcap"), *decode, "-o", "esp.enable_encryption_decode:TRUE",
                          "-T", "fields", "-e", "esp.spi", "-e", "esp.decrypted_data"],
                         capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=120)
    rows = [l.split("\t") for l in out.stdout.splitlines() if l.strip()]
    assert rows, out.stderr
    undecrypted = [r for r in rows if len(r) < 2 or not r[1]]
    assert not undecrypted, f"{len(undecrypted)} of {len(rows)} ESP packets not decrypted by tshark"


def test_nothing_protected_in_clear(run):
    d, _ = run
    keys = keylog(d)
    for p in rdpcap(str(d / "cap.pcap")):
        raw = bytes(p[UDP].payload)
        assert int.from_bytes(raw[:4], "big") in keys  # only ESP on the Internet side
        for secret in (b"ping", b"PIN 4321", b"42.00 EUR", b"hello from the opposite party"):
            assert secret not in raw
