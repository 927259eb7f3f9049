"""The handset-proxy plugin's rekey hold and IKE keylog records (docs/ike-proxy.md), against the stock server of
scripts/ike-lab, no gateway in between:

- hold_rekey: when the proxy initiates a CHILD_SA rekey, the plugin sends the `rekeyed` record and holds charon's
  DELETE for the old CHILD_SA until the key client answers `event=installed` for the new SA's spi_out (or the bound
  passes). The server, as rekey responder, keeps the old CHILD_SA (and sends on it) until that DELETE arrives: its
  own list-sas shows both CHILD_SAs while the hold lasts, and only the new one after the answer.
- ike_keys: with `ike_keys = yes`, an `ike_keys` record carries the IKE_SA's SPIs (the server's own), IANA algorithm
  numbers and SK_e/SK_a; without it (the lab's default), none is ever sent."""
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_ike_proxy_keys import LAB, PLUGIN, KeyClient, Lab, initiate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and two charon daemons")


def lab_with(**env):
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} missing: scripts/setup builds it")
    path = Path(tempfile.mkdtemp(prefix="ike-lab-", dir="/tmp"))
    r = subprocess.run([str(LAB), "up", str(path)], timeout=60, capture_output=True, text=True,
                       env={**os.environ, **env})
    assert r.returncode == 0, f"ike-lab up failed: {r.stderr}"
    return Lab(path)


def lab_down(lab):
    subprocess.run([str(LAB), "down", str(lab.dir)], timeout=60)
    log = lab.dir / "proxy.log"
    if log.exists():
        print("--- proxy.log\n" + log.read_text()[-3000:])
    shutil.rmtree(lab.dir, ignore_errors=True)


@pytest.fixture
def hold_lab():
    lab = lab_with(IKE_LAB_HOLD_REKEY="6", IKE_LAB_IKE_KEYS="yes")
    yield lab
    lab_down(lab)


@pytest.fixture
def plain_lab():
    lab = lab_with()
    yield lab
    lab_down(lab)


def server_children(lab):
    """The server's CHILD_SAs, {(spi_in, spi_out): state}, from swanctl --list-sas ('hs: #2, reqid 1, INSTALLED, ...'
    then 'in  c1234567, ...' and 'out c7654321, ...'). A rekeyed CHILD_SA is REKEYED until the peer's DELETE, then
    DELETED (kept delete_rekeyed_delay for late packets)."""
    children, state, spi_in = {}, None, None
    for line in lab.swanctl("srv", "--list-sas").splitlines():
        m = re.match(r"\s+\S+: #\d+, reqid \d+, (\w+),", line)
        if m:
            state, spi_in = m.group(1), None
            continue
        m = re.match(r"\s+in\s+([0-9a-f]{8})", line)
        if m:
            spi_in = m.group(1)
        m = re.match(r"\s+out\s+([0-9a-f]{8})", line)
        if m and spi_in:
            children[(spi_in, m.group(1))] = state
    return children


def live(lab):
    """The server's CHILD_SAs not yet deleted by the peer."""
    return {pair: st for pair, st in server_children(lab).items() if st != "DELETED"}


def next_record(client, event, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        keys, rec = client.record(timeout=max(0.1, end - time.monotonic()))
        if rec["event"] == event:
            return rec
    raise AssertionError(f"no {event} record")


def installed(client, spi_out):
    client.sock.send(f"v=1\nevent=installed\nspi_out={spi_out}\n".encode())


def test_proxy_rekey_delete_waits_for_the_handset(hold_lab):
    lab = hold_lab
    lab.load_proxy_conn("aes128gcm16")
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, "aes128gcm16")
        up = next_record(client, "up")
        lab.swanctl("proxy", "--rekey", "--child", "hs")
        new = next_record(client, "rekeyed")
        assert new["initiator"] == "1"
        # The DELETE is held: the server (rekey responder) still has the old CHILD_SA beside the new one.
        time.sleep(1.5)
        held = live(lab)
        assert (up["spi_out"], up["spi_in"]) in held and (new["spi_out"], new["spi_in"]) in held, held
        t0 = time.monotonic()
        installed(client, new["spi_out"])
        while (up["spi_out"], up["spi_in"]) in live(lab):
            assert time.monotonic() - t0 < 3, "the DELETE did not follow the installed message"
            time.sleep(0.05)
        assert list(live(lab)) == [(new["spi_out"], new["spi_in"])]
        log = (lab.dir / "proxy.log").read_text()
        assert re.search(r"handset-proxy: rekey held \d+ ms, the handset has the new SA", log), log[-2000:]
        assert new["key_out"] not in log and new["key_in"] not in log
    finally:
        client.close()


def test_hold_ends_at_its_bound_without_an_answer(hold_lab):
    lab = hold_lab
    lab.load_proxy_conn("aes256gcm16")
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, "aes256gcm16")
        up = next_record(client, "up")
        t0 = time.monotonic()
        lab.swanctl("proxy", "--rekey", "--child", "hs")
        new = next_record(client, "rekeyed")
        while (up["spi_out"], up["spi_in"]) in live(lab):
            assert time.monotonic() - t0 < 12, "the hold did not end at hold_rekey (6 s)"
            time.sleep(0.2)
        took = time.monotonic() - t0
        assert 5 <= took, f"the server got the DELETE after {took:.1f} s, before the 6 s hold"
        assert list(live(lab)) == [(new["spi_out"], new["spi_in"])]
        assert re.search(r"rekey held \d+ ms, no word from the handset", (lab.dir / "proxy.log").read_text())
    finally:
        client.close()


def test_ike_keys_record_only_when_asked(hold_lab, plain_lab):
    for lab, asked in ((hold_lab, True), (plain_lab, False)):
        lab.load_proxy_conn("aes128gcm16")
        client = KeyClient(lab.env["KEYS_SOCK"])
        try:
            initiate(lab, "aes128gcm16")
            seen = []
            while True:
                _, rec = client.record()
                seen.append(rec["event"])
                if rec["event"] == "up":
                    break
                assert rec["event"] == "ike_keys" and asked, seen
                keys = list(rec)
                assert keys == ["v", "event", "ike_name", "ike_id", "spi_i", "spi_r", "encr", "encr_keysize", "integ",
                                "sk_ei", "sk_er", "sk_ai", "sk_ar"], keys
                # aes256-sha256-x25519: AES-CBC (12) 256, HMAC-SHA2-256-128 (12): 32-octet SK_e and SK_a.
                assert (rec["encr"], rec["encr_keysize"], rec["integ"]) == ("12", "256", "12")
                assert all(len(rec[k]) == 64 for k in ("sk_ei", "sk_er", "sk_ai", "sk_ar"))
                srv = lab.swanctl("srv", "--list-sas")
                assert rec["spi_i"] in srv and rec["spi_r"] in srv, srv
                assert rec["sk_ei"] not in (lab.dir / "proxy.log").read_text()
            assert seen.count("ike_keys") == (1 if asked else 0), seen
        finally:
            client.close()
