"""The firmware binary with the boards' power-key and reset GPIO keys, on a machine without GPIO chips.

This kernel has CONFIG_GPIOLIB unset (no /dev/gpiochip*, no gpio-sim), so the path exercised for real is the
missing-chip one: the firmware must log each unavailable line once, keep running (bring-up against the simulator,
recovery attempts against a silent modem) and stop cleanly on SIGTERM. Driving a real line is not tested here.

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import os
import subprocess
from pathlib import Path

import pytest

from firmware_proc import REPO, Firmware, firmware_command
from modem_sim import Simulator

NO_CHIP = "(request: No such file or directory (errno 2))"  # ENOENT: /dev/gpiochip0 does not exist here


def write_config(path, serial, state, extra=""):
    # The rpi4 profile's wiring (Boards/profiles/rpi4.conf).
    path.write_text(f"state_dir = {state}\nserial = {serial}\ngateway_number = +15550100000\n"
                    f"power_key_gpio = gpiochip0:23\nreset_gpio = gpiochip0:24\n{extra}")
    return path


def test_missing_chip_is_logged_once_and_bring_up_goes_on(tmp_path, state_dir):
    sim = Simulator("simcom")
    try:
        fw = Firmware(write_config(tmp_path / "fw.conf", sim.link, state_dir))
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        assert fw.stop() == 0, fw.output()
    finally:
        sim.close()
    out = fw.output()
    assert out.count("fw: power key gpio unavailable " + NO_CHIP) == 1, out
    assert out.count("fw: reset gpio unavailable " + NO_CHIP) == 1, out
    # The modem answered: no pulse was attempted, and SIGTERM ended the loop rather than killing the process.
    assert "modem power:" not in out, out
    assert "fw: stopping" in out, out


def test_silent_modem_recovery_attempts_keep_the_firmware_running(tmp_path, state_dir):
    master, slave = os.openpty()  # nothing ever answers on the master side
    try:
        conf = write_config(tmp_path / "fw.conf", os.ttyname(slave), state_dir, "recovery_after = 1\n")
        fw = Firmware(conf)
        # Power key at the first failure, then reset, then power key again (silent after the reset).
        assert fw.wait_for(lambda out: out.count("fw: modem power:") >= 3, 50), fw.output()
        assert fw.stop() == 0, fw.output()
    finally:
        os.close(master)
        os.close(slave)
    out = fw.output()
    assert out.count("fw: bring-up failed: modem did not start") >= 3, out
    assert "fw: modem power: pressing the power key" in out and "fw: modem power: pulsing reset" in out, out
    assert out.count("gpio unavailable") == 2, out  # one line each, however many attempts
    assert "fw: modem ready" not in out, out


@pytest.mark.parametrize("board", sorted(p.stem for p in (REPO / "Boards/profiles").glob("*.conf")))
def test_board_config_template_is_accepted_by_the_firmware(board, tmp_path):
    # Boards/build --config-only writes the template; the firmware must get past parsing it (it then stops at the
    # missing device key in /var/lib/handset, which is not a configuration error).
    path = subprocess.run(["bash", "Boards/build", "--config-only", board], cwd=REPO, check=True,
                          capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[-1]
    text = Path(path).read_text()
    profile = (REPO / "Boards/profiles" / f"{board}.conf").read_text()
    for key in ("power_key_gpio", "reset_gpio"):
        line = next(l for l in profile.splitlines() if l.startswith(key))
        assert line in text.splitlines(), f"{key} missing from the template"
    conf = tmp_path / "handset.conf"
    conf.write_text(text.replace("/var/lib/handset", str(tmp_path / "no-state")))
    r = subprocess.run(firmware_command(conf), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "config line" not in r.stdout, r.stdout
    assert "no usable device key" in r.stdout, r.stdout
