"""`handset-gateway` as an operator runs it: a real process bound over SMPP to the emulated SMS centre
(`handset-emu modem --smpp-port`), a device provisioned with `handset-emu provision`, and the firmware
(`handset-fw run`) on the simulator's pty driving a login through SMS. Then /metrics shows the login, /ready is 200,
and SIGTERM drains and exits 0 within a bound."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from modem_sim import HANDSET_EMU, Simulator
from test_firmware_gpio import Firmware

REPO = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("HANDSET_GATEWAY", str(REPO / ".build/debug/handset-gateway"))
GATEWAY_NUMBER = "+15550199"


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_check_config_names_the_bad_line(tmp_path):
    conf = tmp_path / "gateway.conf"
    conf.write_text("registry = reg.sqlite\n# comment\nsmpp_port = 99999\n")
    r = subprocess.run([GATEWAY, "--config", str(conf), "--check-config"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.strip() == "handset-gateway: %s:3: smpp_port: allowed: 1-65535" % conf


def test_daemon_logs_a_handset_in_over_smpp_and_drains_on_sigterm(tmp_path):
    sim = Simulator("simcom", smpp=True)
    gw = fw = None
    try:
        state = tmp_path / "state"
        fw_conf = tmp_path / "handset.conf"
        fw_conf.write_text(f"state_dir = {state}\nserial = {sim.link}\ngateway_number = {GATEWAY_NUMBER}\n")
        subprocess.run([HANDSET_EMU, "provision", "--registry", str(tmp_path / "reg.sqlite"), "--kek",
                        str(tmp_path / "reg.kek"), "--state-dir", str(state), "--msisdn", "+15550100001",
                        "--config", str(fw_conf)], check=True, capture_output=True, timeout=30)
        pw = tmp_path / "smpp.pw"
        pw.write_text("pw\n")
        pw.chmod(0o600)
        conf = tmp_path / "gateway.conf"
        conf.write_text(f"registry = reg.sqlite\nkek = reg.kek\nsmpp_port = {sim.smpp_port}\n"
                        f"smpp_system_id = handset-gw\nsmpp_password_file = smpp.pw\n"
                        f"gateway_number = {GATEWAY_NUMBER}\nudp_listen = 127.0.0.1:0\nlog_format = json\n"
                        f"http_listen = 127.0.0.1:0\ndrain_timeout = 5\nnegotiator = emulated\n")
        check = subprocess.run([GATEWAY, "--config", str(conf), "--check-config"], capture_output=True, text=True,
                               timeout=10)
        assert check.returncode == 0, check.stderr
        gw_log = (tmp_path / "gateway.log").open("w+")
        gw = subprocess.Popen([GATEWAY, "--config", str(conf)], stdout=gw_log, stderr=subprocess.STDOUT, text=True)

        def started():
            gw_log.seek(0)
            for line in gw_log.read().splitlines():
                if line.startswith("{") and json.loads(line).get("msg") == "handset-gateway started":
                    return json.loads(line)
            assert gw.poll() is None, "gateway exited: " + (tmp_path / "gateway.log").read_text()
            return None

        port = int(wait_for(started, 15, "the gateway to start")["http"].rsplit(":", 1)[1])
        assert http_get(port, "/health")[0] == 200
        wait_for(lambda: http_get(port, "/ready")[0] == 200, 10, "/ready (SMPP bound)")
        wait_for(lambda: "SMPP bound" in (tmp_path / "gateway.log").read_text(), 5, "the bind logged")
        sim.wait_event(lambda e: e["event"] == "smpp-bind" and e["system-id"] == "handset-gw", 5)

        fw = Firmware(fw_conf)
        # type 4: the confirm-ack, the end of a login (login, login-ack, key-confirm, confirm-ack).
        assert fw.wait_for(lambda out: "key-delegation accepted type 4" in out, 40), fw.output()
        status, text = http_get(port, "/metrics")
        assert status == 200
        assert metric(text, "gateway_logins_total") >= 1, text
        assert metric(text, "gateway_rotations_total") >= 1, text
        assert metric(text, "gateway_integrity_failures_total") == 0
        assert metric(text, "gateway_smpp_submits_acked_total") >= 2
        assert 'gateway_message_duration_seconds_count{type="login"}' in text

        start = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=15) == 0, (tmp_path / "gateway.log").read_text()
        assert time.monotonic() - start < 10
        log = (tmp_path / "gateway.log").read_text()
        assert "SMPP unbound" in log and "registry closed" in log
    finally:
        if fw:
            fw.stop()
        if gw and gw.poll() is None:
            gw.kill()
            gw.wait()
        sim.close()
