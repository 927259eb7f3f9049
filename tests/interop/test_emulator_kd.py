"""End to end: the key-delegation scenarios `kd-over-udp` (SMS unavailable: the SA comes by UDP, secret data is
refused), `sa-delete` (the gateway deletes a pair; the next datagram brings a fresh SPI) and `read-retry` (the
+CMGR reading a pushed SA loses its final result; the SMS is read again next tick) on every modem profile with sockets. The Internet-side capture is then checked with scapy and the keylog, as in test_emulator_capture.py:
every packet authenticates, no (key, nonce) pair repeats, sequence numbers increase per SPI.

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import csv
import os
import re
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.utils import rdpcap

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))


@pytest.fixture(scope="module", params=["simcom", "quectel", "ublox", "sim800"])
def run(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"kd-{request.param}")
    args = [EMU, "run", "--profile", request.param, "--scenario", "kd-over-udp", "--scenario", "sa-delete",
            "--scenario", "read-retry",
            "--pcap", str(d / "cap.pcap"), "--keylog", str(d / "esp_sa")]
    if os.environ.get("HANDSET_FIRMWARE"):
        args += ["--firmware", os.environ["HANDSET_FIRMWARE"]]
    if os.environ.get("HANDSET_QEMU"):
        args += ["--qemu", os.environ["HANDSET_QEMU"]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    return d, r


def test_every_scenario_passes(run):
    _, r = run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"PASS\s+kd-over-udp\s.*by UDP \(\d+ up, \d+ down\), echo works, secret refused", r.stdout), r.stdout
    m = re.search(r"PASS\s+sa-delete\s.*pair (0x[0-9a-f]{8}) deleted \(handset SAs (\d+) -> (\d+)\), "
                  r"old-SPI packet dropped, new pair (0x[0-9a-f]{8})", r.stdout)
    assert m, r.stdout
    old, before, after, new = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    assert after == before - 2, "the handset did not remove exactly both halves"
    assert new != old
    assert re.search(r"PASS\s+read-retry\s.*SA 0x[0-9a-f]{8} installed, SMS deleted", r.stdout), r.stdout


def test_capture_authenticates_with_the_keylog_and_never_reuses_a_nonce(run):
    d, _ = run
    with open(d / "esp_sa") as f:
        keys = {int(row[3], 16): bytes.fromhex(row[5][2:]) for row in csv.reader(f)}
    packets = rdpcap(str(d / "cap.pcap"))
    # 2 echoes each way per scenario, one of them twice in sa-delete, plus the stale old-SPI packet.
    assert len(packets) >= 7
    seen, last_seq = set(), {}
    for p in packets:
        raw = bytes(p[UDP].payload)
        spi, seq = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
        assert spi in keys, f"SPI {spi:#x} has no key in the keylog"
        assert (spi, raw[8:16]) not in seen, f"(key, nonce) reused on SPI {spi:#x}"
        seen.add((spi, raw[8:16]))
        assert seq > last_seq.get(spi, 0), f"sequence number did not increase on SPI {spi:#x}"
        last_seq[spi] = seq
        sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=keys[spi], auth_algo="NULL")
        assert sa.decrypt(IP(src=p[IP].src, dst=p[IP].dst) / ESP(raw)) is not None  # raises on a bad ICV
