"""The firmware's TUN interface end to end (root only): `handset-emu run --scenario tun` moves the firmware's TUN
interface into a network namespace, where an ordinary Python UDP socket sends to the opposite party's echo service
(127.0.0.1:7 in the emulated world, routed into the interface) and gets the echo back through it. Then the capture
is checked by code no one here wrote: scapy decrypts every ESP packet with the keylog, the program's datagram is
inside one, and it never appears in clear."""
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

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                                reason="needs root and /dev/net/tun")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu-tun")
    args = [EMU, "run", "--scenario", "tun", "--pcap", str(d / "cap.pcap"), "--keylog", str(d / "esp_sa")]
    if os.environ.get("HANDSET_FIRMWARE"):
        args += ["--firmware", os.environ["HANDSET_FIRMWARE"]]
    if os.environ.get("HANDSET_QEMU"):
        args += ["--qemu", os.environ["HANDSET_QEMU"]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=180)
    if r.returncode == 77:  # root, yet not permitted (a container without CAP_NET_ADMIN): the emulator says why
        pytest.skip(re.search(r"skipped: .*", r.stdout).group(0))
    return d, r


def test_echo_through_the_tun_interface(run):
    _, r = run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"PASS\s+tun\s", r.stdout), r.stdout[-3000:]
    assert "0 failed" in r.stdout and "skipped" not in r.stdout


def test_the_program_datagram_is_esp_only_on_the_wire(run):
    d, r = run
    token = re.search(r"\('(through the TUN \d+)'\)", r.stdout).group(1).encode()
    with open(d / "esp_sa") as f:
        keys = {int(row[3], 16): bytes.fromhex(row[5][2:]) for row in csv.reader(f)}
    found = 0
    for p in rdpcap(str(d / "cap.pcap")):
        raw = bytes(p[UDP].payload)
        assert token not in raw  # never in clear
        spi = int.from_bytes(raw[:4], "big")
        sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=keys[spi], auth_algo="NULL")
        inner = sa.decrypt(IP(src=p[IP].src, dst=p[IP].dst) / ESP(raw))  # raises unless the ICV verifies
        if token in bytes(inner):
            found += 1
    assert found >= 2  # the program's datagram to the peer and the echo back
