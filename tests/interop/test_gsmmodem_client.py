"""python-gsmmodem-new's GsmModem against `handset-emu modem`: a modem other people's code recognises.

Starts the simulator on a pty, lets GsmModem connect() and read identity, signal and operator, sends an SMS in PDU mode
and checks the simulator's JSON event line, then has the SMS centre deliver an SMS that must reach smsReceivedCallback.
"""
import json
import os
import queue
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from gsmmodem.modem import GsmModem

HANDSET_EMU = os.environ.get("HANDSET_EMU", ".build/debug/handset-emu")


class Simulator:
    def __init__(self, profile):
        self.dir = tempfile.mkdtemp(prefix="modemsim-")
        self.link = os.path.join(self.dir, "tty")
        self.proc = subprocess.Popen(
            [HANDSET_EMU, "modem", "--profile", profile, "--link", self.link, "--sms-port", "0", "--boot-delay", "0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        centre = self.wait_event(lambda e: e["event"] == "sms-centre", 10)
        self.sms_port = centre["port"]
        self.wait_event(lambda e: e["event"] == "registration" and e["stat"] == 1, 10)

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def wait_event(self, match, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching simulator event within %.1fs" % timeout)
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if match(event):
                return event

    def control(self, request, timeout=3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(json.dumps(request).encode(), ("127.0.0.1", self.sms_port))
            return json.loads(s.recv(65536))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(params=["simcom", "quectel", "ublox", "generic"])
def sim(request):
    if not os.path.exists(HANDSET_EMU):
        pytest.skip("handset-emu not built at %s" % HANDSET_EMU)
    s = Simulator(request.param)
    yield s
    s.close()


def test_gsmmodem_identity_send_and_receive(sim):
    received = queue.Queue()
    modem = GsmModem(sim.link, 115200, smsReceivedCallbackFunc=received.put)
    modem.smsTextMode = False
    try:
        modem.connect()
        assert modem.manufacturer in ("SIMCOM INCORPORATED", "Quectel", "u-blox", "Generic")
        assert modem.model in ("SIMCOM_SIM7600E-H", "BG96", "SARA-R410M-02B", "GSM-LTE Module")
        assert modem.imei == "861234050012347"
        assert modem.imsi == "001010123456789"
        assert 0 <= modem.signalStrength <= 31
        assert modem.networkName == "Handset Emu"

        modem.sendSms("+15550123456", "Hello from GsmModem", waitForDeliveryReport=False)
        mo = sim.wait_event(lambda e: e["event"] == "sms-mo", 5)
        assert mo["to"] == "+15550123456"
        assert mo["text"] == "Hello from GsmModem"
        assert mo["pdu"]  # the PDU as carried, in hex

        reply = sim.control({"op": "send", "from": "+15550987654", "text": "Hi handset"})
        assert reply["ok"] and reply["parts"] == 1
        sms = received.get(timeout=10)
        assert sms.number == "+15550987654"
        assert sms.text == "Hi handset"
    finally:
        modem.close()
