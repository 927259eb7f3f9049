"""`handset-emu run` (what scripts/demo runs) drives `handset-gateway` as its own process over SMPP, not an in-process
gateway (issue 17): the daemon's pid is announced, the scenarios that read the gateway's state pass through its
/metrics and admin routes, SIGTERM at the end drains it (exit 0), and it never outlives the emulator, even when the
emulator is killed with SIGKILL (setpriv --pdeathsig KILL)."""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))
WORLD_LINE = re.compile(r"world: modem \S+ on (/\S+)/modem")
DAEMON_LINE = re.compile(r"world: gateway daemon (\S+) \(pid (\d+)\), SMPP to the SMS centre on 127\.0\.0\.1:(\d+)")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_run_uses_the_daemon_and_stops_it_cleanly():
    r = subprocess.run([EMU, "run", "--scenario", "login", "--scenario", "secret-sms", "--scenario", "power-cut"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    m = DAEMON_LINE.search(r.stdout)
    assert m and m.group(1).endswith("handset-gateway"), r.stdout
    assert re.search(r"PASS\s+gateway daemon drained on SIGTERM and exited 0: unbound from the SMS centre", r.stdout)
    assert re.search(r"PASS\s+power-cut\s.*epoch \d+ -> \d+", r.stdout), r.stdout
    assert not alive(int(m.group(2)))


def test_the_daemon_dies_with_a_killed_emulator():
    # Line-buffered, so the daemon's line arrives while the run goes on (a pipe is block-buffered otherwise).
    p = subprocess.Popen(["stdbuf", "-oL", EMU, "run", "--scenario", "rekey", "--duration", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    pid = world = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and pid is None:
            line = p.stdout.readline()
            if not line:
                break
            w = WORLD_LINE.search(line)
            if w:
                world = w.group(1)
            m = DAEMON_LINE.search(line)
            if m:
                pid = int(m.group(2))
        assert pid is not None, "no daemon line"
        assert alive(pid)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
        assert not alive(pid), "handset-gateway outlived the emulator"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
        # A killed emulator leaves its directory behind.
        if world and world.startswith("/tmp/handset-emu-"):
            shutil.rmtree(world, ignore_errors=True)
