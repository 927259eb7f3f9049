"""The firmware when its tty goes away and comes back (a USB modem unplugged and plugged in again).

The simulator's pty is the modem's tty: stopping the simulator closes the master, so the firmware's reads fail with
EIO (hang-up), and its --link symlink disappears. The firmware must log the error by kind, close the port, sleep
through the outage (it once spun at 100% CPU on the dead descriptor) and reopen the link with back-off (1 s doubling
to 30 s) once a new simulator serves it, then bring the modem up again."""
import os
import time

from modem_sim import Simulator
from firmware_proc import Firmware

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15 of stat(5))


def test_lost_tty_is_reopened_with_back_off_and_no_busy_loop(tmp_path, state_dir):  # noqa: F811
    link = str(tmp_path / "ttyUSB2")
    conf = tmp_path / "fw.conf"
    conf.write_text(f"state_dir = {state_dir}\nserial = {link}\ngateway_number = +15550100000\n")
    sim = Simulator("simcom", link=link)
    fw = None
    try:
        fw = Firmware(conf)
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        sim.close()  # the tty is gone
        time.sleep(0.5)
        wall0, cpu0 = time.monotonic(), cpu_seconds(fw.proc.pid)
        time.sleep(6)
        wall, cpu = time.monotonic() - wall0, cpu_seconds(fw.proc.pid) - cpu0
        assert fw.proc.poll() is None, fw.output()
        assert cpu < 0.2 * wall, f"firmware used {cpu:.2f} s CPU in {wall:.1f} s of outage\n" + fw.output()[-2000:]
        assert "fw: serial link lost" in fw.output(), fw.output()
        sim = Simulator("simcom", link=link)  # plugged in again, at the same path
        assert fw.wait_for(lambda out: out.count("fw: bearer up") >= 2, 60), fw.output()
        assert fw.stop() == 0, fw.output()
    finally:
        if fw and fw.proc.poll() is None:
            fw.proc.kill()
        sim.close()
    out = fw.output()
    assert "fw: modem error (event loop): transport hang-up: Input/output error (errno 5)" in out, out
    # Back-off: tries after 1, 2 and 4 s failed in the 6.5 s outage (the path was gone), each logged once.
    assert out.count("fw: serial device not back: No such file or directory (errno 2)") in (2, 3, 4), out
    assert "next try in 2 s" in out and "next try in 4 s" in out, out
    assert "fw: serial link reopened" in out, out
    print(f"outage CPU: {cpu:.3f} s over {wall:.1f} s wall ({100 * cpu / wall:.1f}%)")
