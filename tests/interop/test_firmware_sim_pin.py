"""The SIM PIN at bring-up (docs/firmware.md, SIM PIN): the firmware against the simulator's PIN-protected SIM on a
pty (`handset-emu modem --sim-pin`). A right PIN registers; a wrong one costs one try and is never entered again, not
even after a restart, until the setting changes; with one try left nothing is entered; a SIM asking for its PUK
stops bring-up with a clear message. The simulator reports every PIN it was given (`sim-pin` events).

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import os
import subprocess
import time

from modem_sim import Simulator
from firmware_proc import Firmware, firmware_command
from test_firmware_status import sim_line, status_lines

PIN = "1234"


def write_config(tmp_path, sim, state_dir, extra):
    path = tmp_path / "fw.conf"
    path.write_text(f"state_dir = {state_dir}\nserial = {sim.link}\ngateway_number = +15550100000\n"
                    f"app_socket = {tmp_path / 'app.sock'}\n{extra}")
    return path


def counter(config, name):
    return next(int(l[1]) for l in status_lines(config) if l[0] == name)


def wait_status(config, expected, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sim_line(config) == expected:
                return True
        except (AssertionError, StopIteration):
            pass  # the app socket is not up yet
        time.sleep(0.3)
    return False


def test_right_pin_registers(tmp_path, state_dir):
    sim = Simulator("quectel", sim_pin=PIN)
    config = write_config(tmp_path, sim, state_dir, f"sim_pin = {PIN}\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        assert "fw: SIM PIN accepted" in fw.output()
        assert [e["result"] for e in sim.events_so_far("sim-pin")] == ["accepted"]
        assert sim_line(config) == "sim unlocked tries-left unknown"
        assert counter(config, "sim-pins-entered") == 1
        # The SIM's "+CPIN: READY" (and Quectel's APP RDY) after the PIN is no module reboot. (Boot banners the
        # firmware finds waiting when it opens the tty may count as one: module-reboots is not checked.)
        out = fw.output()
        assert "module rebooted" not in out[out.index("fw: SIM PIN accepted"):], out
        assert PIN not in fw.output()
    finally:
        fw.stop()
        sim.close()


def test_sim_slow_to_be_ready_after_its_pin(tmp_path, state_dir):
    # The SIM answers +CME ERROR: 14 (busy) for 3 s after its PIN, then prints its ready banners: bring-up asks again
    # step by step (the loop runs meanwhile) and goes on; the banners are no module reboot.
    sim = Simulator("simcom", sim_pin=PIN, sim_ready_delay=3)
    config = write_config(tmp_path, sim, state_dir, f"sim_pin = {PIN}\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        out = fw.output()
        assert "fw: SIM PIN accepted" in out and "bring-up failed" not in out, out
        assert "module rebooted" not in out[out.index("fw: SIM PIN accepted"):], out
        assert [e["result"] for e in sim.events_so_far("sim-pin")] == ["accepted"]
        assert sim_line(config) == "sim unlocked tries-left unknown"
    finally:
        fw.stop()
        sim.close()


def test_wrong_pin_costs_one_try_and_is_never_entered_again(tmp_path, state_dir):
    sim = Simulator("simcom", sim_pin=PIN)
    config = write_config(tmp_path, sim, state_dir, "sim_pin = 9999\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: it is not entered again until sim_pin" in out, 60), fw.output()
        assert "fw: SIM PIN wrong: the SIM refused it (2 tries left)" in fw.output()
        assert wait_status(config, "sim wrong-pin tries-left 2"), fw.output()
        assert "fw: bearer up" not in fw.output()
        refusal = (state_dir / "sim-pin-refused").read_bytes()
        assert b"9999" not in refusal and (state_dir / "sim-pin-refused").stat().st_mode & 0o077 == 0
    finally:
        assert fw.stop() == 0, fw.output()
    # A restart (or a reboot) does not try it again: the refusal was kept.
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: SIM PIN not entered: the SIM refused this PIN before (2 tries left)" in out,
                           60), fw.output()
        assert wait_status(config, "sim wrong-pin tries-left 2"), fw.output()
        assert counter(config, "sim-pins-entered") == 0 and counter(config, "sim-pins-withheld") == 1
        events = sim.events_so_far("sim-pin")
        assert [(e["result"], e["pin-tries"]) for e in events] == [("wrong", 2)], events
    finally:
        assert fw.stop() == 0, fw.output()
    # A changed setting is tried: the right PIN now, and the refusal is forgotten.
    config = write_config(tmp_path, sim, state_dir, f"sim_pin = {PIN}\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        assert [e["result"] for e in sim.events_so_far("sim-pin")] == ["wrong", "accepted"]
        assert not (state_dir / "sim-pin-refused").exists()
    finally:
        fw.stop()
        sim.close()


def test_one_try_left_is_never_spent(tmp_path, state_dir):
    sim = Simulator("ublox", sim_pin=PIN, sim_pin_tries=1)
    config = write_config(tmp_path, sim, state_dir, f"sim_pin = {PIN}\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: SIM PIN not entered: a wrong one now would lock the SIM (PUK) (1 try left)"
                           in out, 60), fw.output()
        assert wait_status(config, "sim last-try-kept tries-left 1"), fw.output()
        assert counter(config, "sim-pins-withheld") == 1 and counter(config, "sim-pins-entered") == 0
        assert sim.events_so_far("sim-pin") == []  # not even the right PIN
    finally:
        fw.stop()
        sim.close()


def test_sim_puk_stops_with_a_clear_error(tmp_path, state_dir):
    sim = Simulator("simcom", sim_pin=PIN, sim_pin_tries=0)
    config = write_config(tmp_path, sim, state_dir, f"sim_pin = {PIN}\n")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: the SIM asks for its PUK (3 wrong PINs)" in out, 60), fw.output()
        assert wait_status(config, "sim puk-needed tries-left 0"), fw.output()
        assert sim.events_so_far("sim-pin") == []
        assert fw.output().count("asks for its PUK") == 1
    finally:
        fw.stop()
        sim.close()


def test_no_pin_configured_says_so(tmp_path, state_dir):
    sim = Simulator("generic", sim_pin=PIN)
    config = write_config(tmp_path, sim, state_dir, "")
    fw = Firmware(config)
    try:
        assert fw.wait_for(lambda out: "fw: the SIM asks for its PIN and none is configured (sim_pin, sim_pin_file) "
                           "(3 tries left)" in out, 60), fw.output()
        assert wait_status(config, "sim pin-needed tries-left 3"), fw.output()
    finally:
        fw.stop()
        sim.close()


def test_pin_file_must_be_the_owners_alone(tmp_path, state_dir):
    sim = Simulator("simcom", sim_pin=PIN)
    pin_file = tmp_path / "sim.pin"
    pin_file.write_text(PIN + "\n")
    os.chmod(pin_file, 0o640)
    config = write_config(tmp_path, sim, state_dir, f"sim_pin_file = {pin_file}\n")
    try:
        r = subprocess.run(firmware_command(config), capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stdout.splitlines() == [
            f"handset-fw: sim_pin_file {pin_file} may be read or written by group or others (mode 0640)",
            "handset-fw: a SIM PIN file must be its owner's alone: chmod 600 it"], r.stdout
        assert sim.events_so_far("sim-pin") == []
        os.chmod(pin_file, 0o600)
        fw = Firmware(config)
        try:
            assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
            assert [e["result"] for e in sim.events_so_far("sim-pin")] == ["accepted"]
        finally:
            fw.stop()
    finally:
        sim.close()
