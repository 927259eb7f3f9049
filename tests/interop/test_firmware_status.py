"""`handset-fw status CONFIG` asks the running firmware for its counters over the app socket (COUNTERS, 0x05) and
prints one `name value` line each: the firmware's, the modem driver's, the data plane's and key delegation's
(docs/firmware.md, Counters).

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import socket
import subprocess

from modem_sim import Simulator
from firmware_proc import FIRMWARE, QEMU, Firmware

# Every counter docs/firmware.md lists, in the order the firmware prints them.
NAMES = """esp-out esp-in esp-dropped sms-out sms-in sms-foreign modem-errors modem-error-lines-left-out module-reboots
sms-delete-queue-overflows sms-read-queue-overflows app-refused app-unknown sms-parts-stored sms-messages-completed
sms-parts-duplicate sms-messages-timed-out sms-messages-evicted sms-parts-rejected tun-packets-in tun-packets-out
tun-not-udp tun-malformed tun-foreign-source tun-too-long-to-hold tun-write-errors power-pulses power-errors
sim-pins-entered sim-pins-withheld at-lines at-urcs at-urc-overflows
at-urc-truncations at-line-overruns at-garbage-bytes at-stray-lines at-timeouts at-reboots at-echoes
at-missing-bodies at-bad-raw-lengths esp-unknown-spi esp-truncated esp-malformed esp-bad-inner esp-policy-mismatch
esp-non-esp esp-keepalives esp-dummies esp-discarded esp-needs-key esp-clear-refused kd-received kd-sent
kd-malformed kd-integrity-failures kd-counter-low kd-counter-blocked kd-unknown-epoch kd-unexpected
kd-store-failures kd-outbox-full kd-requests-abandoned kd-sas-installed kd-sas-deleted kd-errors-from-gateway
kd-wrong-carriage kd-sa-outside-policy kd-sa-peer-limit kd-sa-ipv6-refused kd-addresses-adopted kd-sms-failures kd-udp-sent
kd-udp-received kd-refused sas""".split()


def status_command(config):
    if QEMU:
        sysroot = "/usr/aarch64-linux-gnu" if "aarch64" in QEMU else "/usr/arm-linux-gnueabihf"
        return [QEMU, "-L", sysroot, FIRMWARE, "status", str(config)]
    return [FIRMWARE, "status", str(config)]


def status_lines(config):
    r = subprocess.run(status_command(config), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return [line.split(" ") for line in r.stdout.splitlines()]


def counters(config):
    """The `name value` lines; the SIM's `sim STATE tries-left N` line and SA lines follow them."""
    return [l for l in status_lines(config) if l[0] not in ("sim", "sa")]


def sim_line(config):
    return next(" ".join(l) for l in status_lines(config) if l[0] == "sim")


def test_status_prints_every_counter_live(tmp_path, state_dir):
    sim = Simulator("simcom")
    sock = str(tmp_path / "app.sock")
    config = tmp_path / "fw.conf"
    config.write_text(f"state_dir = {state_dir}\nserial = {sim.link}\ngateway_number = +15550100000\n"
                      f"app_socket = {sock}\n")
    fw = Firmware(config)
    app = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
        app.bind(str(tmp_path / "app.client"))
        app.settimeout(5)
        app.sendto(b"\x04", sock)  # STATUS: this socket is the app now
        assert app.recv(256)[0] == 0x85
        everything = status_lines(config)
        assert [l[0] for l in everything] == NAMES + ["sim"], everything  # no SA yet
        assert everything[-1] == ["sim", "ready", "tries-left", "unknown"]
        lines = counters(config)
        assert [l[0] for l in lines] == NAMES, lines
        values = {l[0]: int(l[1]) for l in lines}
        assert all(len(l) == 2 for l in lines)
        assert values["at-lines"] > 0 and values["at-urc-overflows"] == 0 and values["sas"] == 0
        assert values["kd-sent"] >= 1  # the login went out
        assert not (tmp_path / "app.sock.status").exists()  # the asker's own socket is removed
        app.sendto(b"\x7f", sock)  # not a request: counted, not answered
        again = {l[0]: int(l[1]) for l in counters(config)}
        assert again["app-unknown"] == values["app-unknown"] + 1  # live figures, not a snapshot
    finally:
        app.close()
        fw.stop()
        sim.close()


def test_status_without_a_firmware_says_so(tmp_path, state_dir):
    config = tmp_path / "fw.conf"
    config.write_text(f"state_dir = {state_dir}\nserial = /dev/null\ngateway_number = +15550100000\n"
                      f"app_socket = {tmp_path / 'app.sock'}\n")
    r = subprocess.run(status_command(config), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "handset-fw: no firmware at " in r.stdout, r.stdout + r.stderr
