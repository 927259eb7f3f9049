"""Kannel (Debian's bearerbox and smsbox, the SMS gateway operators run) against the SMS centre's SMPP side.

bearerbox binds to `handset-emu modem --smpp-port` as a transceiver with an SMPP smsc group. A sendsms HTTP request to
smsbox with a port UDH and 8-bit coding must arrive in the simulated module (read back with AT+CMGR); an SMS the
module sends must come out of Kannel as an MO message (smsbox's get-url, answered by a tiny HTTP server here).
"""
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from gsmmodem.pdu import decodeSmsPdu

from modem_sim import AT, Simulator

MODULE_NUMBER = "15550100001"    # SubscriberIdentity.ownNumber
GATEWAY_NUMBER = "15550199"

PORT_UDH = bytes([0x06, 0x05, 0x04, 0x40, 0x10, 0x40, 0x10])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MOCatcher(http.server.BaseHTTPRequestHandler):
    received = []

    def do_GET(self):
        MOCatcher.received.append(urllib.parse.urlsplit(self.path).query)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def kannel_config(smsc_port, admin, box, sendsms, mo_port, logdir):
    return f"""
group = core
admin-port = {admin}
admin-password = admin
smsbox-port = {box}
box-allow-ip = 127.0.0.1
log-file = "{logdir}/bearerbox.log"
log-level = 0

group = smsc
smsc = smpp
smsc-id = emu
host = 127.0.0.1
port = {smsc_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = secret
system-type = ""
source-addr-ton = 1
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
log-file = "{logdir}/smsbox.log"
log-level = 0

group = sendsms-user
username = tester
password = foobar
max-messages = 1

group = sms-service
keyword = default
catch-all = yes
max-messages = 0
get-url = "http://127.0.0.1:{mo_port}/mo?from=%p&to=%P&udh=%u&data=%b&coding=%c"
"""


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_kannel_binds_sends_and_receives():
    sim = Simulator("simcom", smpp=True, smpp_password="secret")
    workdir = tempfile.mkdtemp(prefix="kannel-")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MOCatcher)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    admin, box, sendsms = free_port(), free_port(), free_port()
    conf = os.path.join(workdir, "kannel.conf")
    with open(conf, "w") as f:
        f.write(kannel_config(sim.smpp_port, admin, box, sendsms, httpd.server_address[1], workdir))
    procs = []
    at = AT(sim.link)
    try:
        procs.append(subprocess.Popen(["/usr/sbin/bearerbox", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        status_url = f"http://127.0.0.1:{admin}/status.txt?password=admin"
        wait_until(lambda: "emu" in (s := urllib.request.urlopen(status_url, timeout=2).read().decode())
                   and "online" in s.split("emu", 1)[1].splitlines()[0], 20, "bearerbox bound to the SMSC")
        procs.append(subprocess.Popen(["/usr/sbin/smsbox", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        assert "OK" in at.command("ATE0")
        assert "OK" in at.command("AT+CMGF=0")
        query = urllib.parse.urlencode({"username": "tester", "password": "foobar", "from": "+" + GATEWAY_NUMBER,
                                        "to": "+" + MODULE_NUMBER, "coding": "1"})
        query += "&udh=" + urllib.parse.quote_from_bytes(PORT_UDH) + "&text=" + urllib.parse.quote_from_bytes(b"\xC0\xFF\xEE")
        send_url = f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms?" + query
        wait_until(lambda: urllib.request.urlopen(send_url, timeout=2).status == 202, 20, "smsbox to take the sendsms")

        at.read((b'+CMTI: "SM",0',), 10)
        lines = [l for l in at.command("AT+CMGR=0").split("\r\n") if l]
        sms = decodeSmsPdu(lines[1])
        assert sms["number"] == "+" + GATEWAY_NUMBER
        ports = [ie for ie in sms["udh"] if ie.id == 0x05]
        assert len(ports) == 1 and ports[0].destination == 16400
        assert lines[1].upper().endswith("0A060504401040" + "10C0FFEE")

        submit = "00" + "41" + "00" + "0891" + "51551099" + "00" + "04" + "0B" + "06050440104010" + "DEADBEEF"
        assert "> " in at.command("AT+CMGS=%d" % (len(submit) // 2 - 1), until=(b"> ",))
        at.port.write(submit.encode() + b"\x1a")
        assert "+CMGS:" in at.read((b"OK\r\n", b"ERROR"))
        wait_until(lambda: MOCatcher.received, 20, "Kannel's MO get-url")
        mo = urllib.parse.parse_qs(MOCatcher.received[0], encoding="latin-1")
        assert mo["from"] == ["+" + MODULE_NUMBER]
        assert mo["data"][0].encode("latin-1") == bytes.fromhex("DEADBEEF")
        assert mo["udh"][0].encode("latin-1") == PORT_UDH
    finally:
        at.close()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        httpd.shutdown()
        sim.close()
        shutil.rmtree(workdir, ignore_errors=True)
