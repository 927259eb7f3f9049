"""End to end with a stock strongSwan server (issue 15): `handset-emu run --server strongswan` starts scripts/ike-lab
(the server in its own network namespace, UDP echo on 10.200.0.1:7 behind it, and the gateway's proxy charon with our
handset-proxy plugin), the packet gateway on the handset's public address, the gateway with StrongSwanNegotiator,
and the real firmware behind the simulated modem.

- ike-handset-initiated: the firmware's key request (SMS) makes the proxy charon negotiate with the server through
  the packet gateway; the sa-transfer reaches the handset by SMS; its UDP echo to 10.200.0.1:7 comes back through the
  server's libipsec, and the server's own list-sas shows the CHILD_SA with the SPI the handset installed.
- ike-server-initiated: the server deletes its SAs (the handset drops the pair it held), then initiates toward the
  handset's public address (its VICI `initiate`); the proxy answers, the SA is pushed by SMS, the echo uses it without
  a key request, and the server's packet counters for it equal the handset's.

Needs root, strongSwan and the plugin (scripts/setup); otherwise skipped with the reason."""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))
PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so"

needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(PLUGIN) or not os.path.exists("/usr/lib/ipsec/charon"),
    reason="needs root, strongSwan and the handset-proxy plugin (scripts/setup)")


def emu_args():
    args = []
    if os.environ.get("HANDSET_FIRMWARE"):
        args += ["--firmware", os.environ["HANDSET_FIRMWARE"]]
    if os.environ.get("HANDSET_QEMU"):
        args += ["--qemu", os.environ["HANDSET_QEMU"]]
    return args


@needs_lab
def test_handset_and_server_initiated_against_stock_strongswan():
    r = subprocess.run([EMU, "run", "--server", "strongswan"] + emu_args(), capture_output=True, text=True,
                       timeout=400, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    m = re.search(r"PASS\s+ike-handset-initia\S*\s.*server CHILD_SA ([0-9a-f]{8})/([0-9a-f]{8}) (\S+), "
                  r"packets in/out (\d+)/(\d+)", r.stdout)
    assert m, r.stdout
    assert int(m.group(4)) >= 1 and int(m.group(5)) >= 1, "the server's libipsec counted no ESP one way"
    m = re.search(r"PASS\s+ike-server-initiat\S*\s.*(\d+) pair\(s\) deleted by the server left the handset; "
                  r"server-made CHILD_SA [0-9a-f]{8}/[0-9a-f]{8} pushed by SMS, echo over it without a key request, "
                  r"server packets in/out 1/1 as the handset counted", r.stdout)
    assert m, r.stdout
    assert int(m.group(1)) >= 1, "the handset-initiated pair was not there to be deleted"
    assert re.search(r"strongSwan server 10\.99\.\d+\.1 \(hssrv\w+\), packet gateway 10\.99\.\d+\.2:4500", r.stdout)
    # ike-lab down ran: no namespace of this run is left behind.
    ns = re.search(r"\((hssrv\w+)\)", r.stdout).group(1)
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_without_the_lab_it_says_why_and_exits_77():
    r = subprocess.run([EMU, "run", "--server", "strongswan", "--ike-lab", "/nonexistent/ike-lab"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 77, r.stdout + r.stderr
    assert re.search(r"SKIP\s+--server strongswan: (needs root|/nonexistent/ike-lab missing)", r.stdout), r.stdout
    assert "scenario" not in r.stdout  # never falls back to the emulated peer
