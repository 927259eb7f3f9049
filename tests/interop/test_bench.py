"""`handset-emu bench` against `handset-emu modem`: the bench tester's probe gives a complete report on the simulator's pty.

The simulator's identity (SubscriberIdentity defaults and the profile tables in Sources/ModemSim) is the oracle for each
report line; the UDP test answers from a plain loopback UDP echo socket; the SMS test is checked against the
simulator's sms-mo JSON event.
"""
import os
import socket
import subprocess
import threading

import pytest

from modem_sim import HANDSET_EMU, Simulator

# What the simulator's profiles say about themselves (Sources/ModemSim/ModemProfile.swift).
PROFILES = {
    "simcom": {"dialect": "simcom", "manufacturer": "SIMCOM INCORPORATED", "model": "SIMCOM_SIM7600E-H"},
    "quectel": {"dialect": "quectel", "manufacturer": "Quectel", "model": "BG96"},
    "sim800": {"dialect": "sim800", "manufacturer": "SIMCOM_Ltd", "model": "SIMCOM_SIM800L"},
}


class EchoServer:
    """A loopback UDP socket that answers each datagram with b"echo:" + datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.received.append(data)
            self.sock.sendto(b"echo:" + data, addr)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(params=sorted(PROFILES))
def sim(request):
    s = Simulator(request.param)
    s.profile = request.param
    yield s
    s.close()


def bench(*args, timeout=30):
    r = subprocess.run([HANDSET_EMU, "bench", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    report = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    return r, report


def test_report_is_complete(sim):
    r, report = bench("--device", sim.link)
    assert r.returncode == 0, r.stderr
    want = PROFILES[sim.profile]
    assert report["device"] == sim.link
    assert report["dialect"] == want["dialect"]
    assert report["manufacturer"] == want["manufacturer"]
    assert report["model"] == want["model"]
    assert report["revision"] and not report["revision"].startswith("unavailable")
    assert report["imei"] == "861234050012347"
    assert report["sim"] == "ready"
    assert report["imsi"] == "001010123456789"
    assert report["iccid"] == "8900101234567890123"
    for domain in ("cs", "ps", "eps"):
        assert report["registration-" + domain].startswith("home (1)"), report
    assert report["signal"] == "rssi=20 (-73 dBm) ber=99 (unknown)"  # TS 27.007 §8.5: -113 + 2*20 dBm
    assert report["operator"].startswith('"Handset Emu"')
    assert report["sms-centre"] == "+15550109999"
    assert not any(v.startswith("unavailable") for v in report.values()), report


def test_udp_echo_and_sms(sim):
    echo = EchoServer()
    try:
        r, report = bench("--device", sim.link, "--profile", sim.profile, "--udp", "127.0.0.1:%d" % echo.port,
                          "--sms", "+15550123")
    finally:
        echo.close()
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert len(echo.received) == 1 and echo.received[0].startswith(b"handset-emu bench")
    n = len(echo.received[0])
    assert report["udp"].startswith("sent %d bytes to 127.0.0.1:%d, answer %d bytes" % (n, echo.port, n + 5)), report
    assert report["sms"].startswith("sent 17 bytes to +15550123, message reference ")
    mo = sim.wait_event(lambda e: e["event"] == "sms-mo", 5)
    assert mo["to"] == "+15550123" and bytes.fromhex(mo["data"]) == b"handset-emu bench"
    assert report["sms"].endswith(" %d" % mo["mr"])


def test_udp_without_answer_fails(sim):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        r, report = bench("--device", sim.link, "--udp", "127.0.0.1:%d" % silent.getsockname()[1],
                          "--udp-timeout", "0.5")
        got = silent.recv(2048)
    finally:
        silent.close()
    assert r.returncode == 1
    assert got.startswith(b"handset-emu bench")
    assert report["udp"].endswith("no answer within 500 ms")
    assert report["imei"] == "861234050012347"  # the rest of the report is still there


def test_trace_shows_the_dialogue(sim):
    r, _ = bench("--device", sim.link, "--trace")
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert any(l.endswith("] > AT+CSQ\\r") for l in lines), lines[:20]
    assert any(l.endswith("] < +CSQ: 20,99") for l in lines)


def test_unopenable_device_exits_2():
    r, report = bench("--device", "/nonexistent/tty")
    assert r.returncode == 2 and "cannot open /nonexistent/tty" in r.stderr
    assert report == {}


def test_silent_device_exits_3():
    import pty
    master, slave = pty.openpty()
    try:
        r, report = bench("--device", os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 3 and "no answer" in r.stderr
    assert report == {}


def test_generic_reports_udp_unsupported():
    s = Simulator("generic")
    try:
        r, report = bench("--device", s.link, "--udp", "127.0.0.1:9")
    finally:
        s.close()
    assert r.returncode == 1
    assert report["dialect"] == "generic" and report["model"] == "GSM-LTE Module"
    assert report["udp"] == "unsupported (the generic dialect has no socket commands)"
