"""The firmware binary as a subprocess for the emulator tests: `run CONFIG` with its output kept, under qemu-user
when HANDSET_QEMU is set. HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build
under qemu-aarch64)."""
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = os.environ.get("HANDSET_FIRMWARE", str(REPO / ".build/debug/handset-fw"))
QEMU = os.environ.get("HANDSET_QEMU")


def firmware_command(config):
    if QEMU:
        sysroot = "/usr/aarch64-linux-gnu" if "aarch64" in QEMU else "/usr/arm-linux-gnueabihf"
        return [QEMU, "-L", sysroot, FIRMWARE, "run", str(config)]
    return [FIRMWARE, "run", str(config)]


class Firmware:
    def __init__(self, config):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(firmware_command(config), stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.output()):
                return True
            assert self.proc.poll() is None, "firmware exited early:\n" + self.output()
            time.sleep(0.2)
        return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
