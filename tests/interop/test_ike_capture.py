"""`handset-emu run --server strongswan --pcap --keylog` (issue 15): the capture holds the packet gateway's public
side, that is the proxy charon's IKE and the handset's ESP as the stock strongSwan server sees them. The keylog is
Wireshark's esp_sa table (from the plugin's key records) and, beside it, `<keylog>.ikev2_decryption_table` (the IKE_SA
keys our plugin sends only because a keylog was asked for: `ike_keys = yes` in the proxy's strongswan.conf).
tshark, code no one here wrote, must decrypt IKE_AUTH (both identities visible) and ESP in both directions.

Needs root, strongSwan, the handset-proxy plugin and tshark; otherwise skipped with the reason."""
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))
PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(PLUGIN) or not os.path.exists("/usr/lib/ipsec/charon")
    or not shutil.which("tshark"),
    reason="needs root, strongSwan, the handset-proxy plugin (scripts/setup) and tshark")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ikecap")
    args = [EMU, "run", "--server", "strongswan", "--scenario", "login", "--scenario", "ike-handset-initiated",
            "--pcap", str(d / "cap.pcap"), "--keylog", str(d / "esp_sa")]
    if os.environ.get("HANDSET_FIRMWARE"):
        args += ["--firmware", os.environ["HANDSET_FIRMWARE"]]
    if os.environ.get("HANDSET_QEMU"):
        args += ["--qemu", os.environ["HANDSET_QEMU"]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=400, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    m = re.search(r"packet gateway (10\.99\.\d+)\.2:4500", r.stdout)
    assert m, r.stdout
    return d, m.group(1)


def tshark(d, tmp_path, *fields):
    conf = tmp_path / ".config" / "wireshark"
    conf.mkdir(parents=True, exist_ok=True)
    shutil.copy(d / "esp_sa", conf / "esp_sa")
    shutil.copy(d / "esp_sa.ikev2_decryption_table", conf / "ikev2_decryption_table")
    out = subprocess.run(["tshark", "-r", str(d / "cap.pcap"), "-o", "esp.enable_encryption_decode:TRUE",
                          "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
                          *[a for f in fields for a in ("-e", f)]],
                         capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


def test_keylogs_are_owner_only_and_hold_both_tables(run):
    d, _ = run
    for name in ("esp_sa", "esp_sa.ikev2_decryption_table"):
        mode = stat.S_IMODE(os.stat(d / name).st_mode)
        assert mode == 0o600, f"{name} is {mode:o}"
    esp = (d / "esp_sa").read_text().splitlines()
    assert len(esp) >= 2 and all(r.startswith('"IPv4",') for r in esp), esp
    ike = (d / "esp_sa.ikev2_decryption_table").read_text().splitlines()
    assert ike and all(re.match(r'[0-9a-f]{16},[0-9a-f]{16},[0-9a-f]+,[0-9a-f]+,"AES-CBC-256 \[RFC3602\]",[0-9a-f]+,'
                                r'[0-9a-f]+,"HMAC_SHA2_256_128 \[RFC4868\]"$', r) for r in ike), ike


def test_tshark_decrypts_ike_auth(run, tmp_path):
    d, _ = run
    rows = tshark(d, tmp_path, "isakmp.exchangetype", "isakmp.enc.decrypted", "isakmp.id.data.user_fqdn",
                  "isakmp.id.data.fqdn")
    auth = [r for r in rows if r[0] == "35"]  # IKE_AUTH
    assert len(auth) >= 2, rows
    assert all(r[1] for r in auth), f"IKE_AUTH not decrypted: {auth}"
    assert any(r[2].endswith("@handset.invalid") for r in auth), f"IDi not visible: {auth}"
    assert any(r[3] == "server.example" for r in auth), f"IDr not visible: {auth}"


def test_tshark_decrypts_esp_both_ways(run, tmp_path):
    d, net = run
    rows = tshark(d, tmp_path, "esp.spi", "esp.decrypted_data", "ip.src", "ip.dst")
    esp = [r for r in rows if r[0]]
    assert esp, rows
    undecrypted = [r for r in esp if not r[1]]
    assert not undecrypted, f"{len(undecrypted)} of {len(esp)} ESP packets not decrypted: {undecrypted[:3]}"
    # Outer addresses first, then the decrypted inner packet's.
    up = [r for r in esp if r[2].split(",")[0] == f"{net}.2"]
    down = [r for r in esp if r[2].split(",")[0] == f"{net}.1"]
    assert any("10.200.0.1" in r[3].split(",")[1:] for r in up), f"no decrypted packet to the service: {up}"
    assert any("10.200.0.1" in r[2].split(",")[1:] for r in down), f"no decrypted packet from the service: {down}"
