"""`handset-emu modem` as a subprocess for the oracle tests: the simulator on a pty, its JSON events, its SMS centre."""
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import serial

HANDSET_EMU = os.environ.get("HANDSET_EMU", ".build/debug/handset-emu")


class Simulator:
    """Starts the simulator with PROFILE and waits for registration. With sms_centre, also opens the SMS centre's
    control port (see `handset-emu modem --help`)."""

    def __init__(self, profile, sms_centre=False, link=None, smpp=False, smpp_password=None, sim_pin=None,
                 sim_pin_tries=3, sim_ready_delay=0):
        assert os.path.exists(HANDSET_EMU), "handset-emu not built at %s (run swift build)" % HANDSET_EMU
        self.dir = tempfile.mkdtemp(prefix="modemsim-")
        self.link = link or os.path.join(self.dir, "tty")
        args = [HANDSET_EMU, "modem", "--profile", profile, "--link", self.link, "--boot-delay", "0.1"]
        if sms_centre:
            args += ["--sms-port", "0"]
        if smpp:
            args += ["--smpp-port", "0"] + (["--smpp-password", smpp_password] if smpp_password else [])
        if sim_pin:
            args += ["--sim-pin", sim_pin, "--sim-pin-tries", str(sim_pin_tries)]
        if sim_ready_delay:
            args += ["--sim-ready-delay", str(sim_ready_delay)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        if sms_centre:
            self.sms_port = self.wait_event(lambda e: e["event"] == "sms-centre", 10)["port"]
        if smpp:
            self.smpp_port = self.wait_event(lambda e: e["event"] == "smpp", 10)["port"]
        # A SIM with a PIN registers once the PIN is entered: then booting is enough.
        self.wait_event(lambda e: e["event"] == "boot" if sim_pin else e["event"] == "registration" and e["stat"] == 1,
                        10)

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

    def events_so_far(self, name):
        """Every event called NAME seen so far, without waiting (events taken by wait_event are not seen)."""
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                break
        return [e for e in self.seen if e["event"] == name]

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
        shutil.rmtree(self.dir, ignore_errors=True)


class AT:
    """A bare AT client on the simulator's pty."""

    def __init__(self, path):
        self.port = serial.Serial(path, 115200, timeout=0.1)

    def command(self, line, until=(b"OK\r\n", b"ERROR"), timeout=5):
        self.port.write(line.encode() + b"\r")
        return self.read(until, timeout)

    def read(self, until, timeout=5):
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out += self.port.read(256)
            if any(u in out for u in until):
                return out.decode(errors="replace")
        raise AssertionError("no %r in %r" % (until, out))

    def close(self):
        self.port.close()
