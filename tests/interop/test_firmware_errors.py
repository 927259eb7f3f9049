"""What `handset-fw run` says when it cannot start: the file, the line, the key and the allowed values for a bad
config; the system's message (strerror) and the number for a system error. Exit status 1 in every case.

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (the embedded builds use the board's libc strerror)."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = os.environ.get("HANDSET_FIRMWARE", str(REPO / ".build/debug/handset-fw"))
QEMU = os.environ.get("HANDSET_QEMU")
BASE = "state_dir = {d}/state\nserial = {d}/no-such-tty\ngateway_number = +15550100000\n"


def run(*args):
    cmd = [FIRMWARE, *args]
    if QEMU:
        sysroot = "/usr/aarch64-linux-gnu" if "aarch64" in QEMU else "/usr/arm-linux-gnueabihf"
        cmd = [QEMU, "-L", sysroot, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def config(tmp_path, extra):
    path = tmp_path / "handset.conf"
    path.write_text(BASE.format(d=tmp_path) + extra)
    return path


def test_missing_config_file_gives_the_path_and_the_systems_message(tmp_path):
    rc, out = run("run", str(tmp_path / "absent.conf"))
    assert rc == 1
    assert out.strip() == f"handset-fw: cannot read the config file {tmp_path}/absent.conf: No such file or directory (errno 2)"


def test_bad_value_names_file_line_key_and_allowed_values(tmp_path):
    path = config(tmp_path, "# a comment\ndialect = sim-com\n")
    rc, out = run("run", str(path))
    assert rc == 1
    assert out.strip() == f"handset-fw: {path}:5: dialect: auto, simcom, sim800(-single), quectel, ublox or generic"


def test_unknown_key_is_named_and_the_keys_are_listed(tmp_path):
    path = config(tmp_path, "local_addres = 10.0.0.2\n")
    rc, out = run("run", str(path))
    assert rc == 1
    first, second = out.strip().split("\n")
    assert first == f"handset-fw: {path}:4: local_addres: unknown key"
    assert second.startswith("handset-fw: the keys are: state_dir serial ")
    assert " local_address " in second and second.endswith("(docs/firmware.md, Configuration)")


def test_missing_required_key_names_the_file(tmp_path):
    path = tmp_path / "handset.conf"
    path.write_text("serial = /dev/null\ngateway_number = +1\n")
    rc, out = run("run", str(path))
    assert rc == 1
    assert out.strip() == f"handset-fw: {path}: state_dir is required"


def test_serial_device_that_cannot_open_names_it_with_the_systems_message(tmp_path):
    state = tmp_path / "state"
    r = subprocess.run([str(REPO / ".build/debug/handset-emu"), "provision", "--registry", str(tmp_path / "reg.sqlite"),
                        "--state-dir", str(state), "--msisdn", "+15550100001"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rc, out = run("run", str(config(tmp_path, "")))
    assert rc == 1
    assert out.strip() == f"handset-fw: cannot open the serial device {tmp_path}/no-such-tty: No such file or directory (errno 2)"


def test_help_exits_0_and_shows_examples():
    rc, out = run("--help")
    assert rc == 0
    assert "Examples:\n  handset-fw selftest\n" in out
