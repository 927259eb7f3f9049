"""The firmware's app interface belongs to its owner (docs/firmware.md, App interface): an AF_UNIX datagram socket,
0600 (0660 with app_group), whose datagrams are accepted only from app_uid (SCM_CREDENTIALS). A second local user
(a child that drops to `nobody`, 65534) is refused: by the file mode, or, when app_group lets it reach the socket,
by its uid; each refusal is counted in STATUS and nothing is answered to it. Needs root to change user.

HANDSET_FIRMWARE / HANDSET_QEMU select another firmware (for example the aarch64 build under qemu-aarch64)."""
import os
import re
import socket
import stat
import struct
import tempfile

import pytest

from modem_sim import Simulator
from firmware_proc import Firmware

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")


@pytest.fixture
def dirs():
    """A directory for the firmware's socket that other users may traverse, and one where `nobody` may bind."""
    sock_dir = tempfile.mkdtemp(prefix="hs-app-")
    os.chmod(sock_dir, 0o755)
    other_dir = tempfile.mkdtemp(prefix="hs-other-")
    os.chmod(other_dir, 0o1777)
    return sock_dir, other_dir


def start(tmp_path, state, sock, extra=""):
    sim = Simulator("simcom")
    config = tmp_path / "fw.conf"
    config.write_text(f"state_dir = {state}\nserial = {sim.link}\ngateway_number = +15550100000\n"
                      f"app_socket = {sock}\n{extra}")
    fw = Firmware(config)
    assert fw.wait_for(lambda out: "fw: bearer up" in out, 60), fw.output()
    return sim, fw


def status(app, sock):
    """STATUS (0x04); the answer's app-refused counter (docs/firmware.md: offset 27 of the body)."""
    app.sendto(b"\x04", sock)
    answer = app.recv(256)
    assert answer[0] == 0x85 and len(answer) >= 32, answer.hex()
    return struct.unpack(">I", answer[1 + 27:1 + 31])[0]


def owner_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    return s


def as_nobody(sock, own_path):
    """In a forked child that became `nobody`: sends STATUS to the firmware. Returns 'eacces', 'answered' or
    'silent' (sent, and nothing came back within 2 s)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        result = b"error"
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(own_path)
            s.settimeout(2)
            try:
                s.sendto(b"\x04", sock)
                try:
                    s.recv(256)
                    result = b"answered"
                except socket.timeout:
                    result = b"silent"
            except PermissionError:
                result = b"eacces"
        finally:
            os.write(w, result)
            os._exit(0)
    os.close(w)
    out = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out


@root_only
def test_second_user_reaching_the_socket_is_refused_and_counted(tmp_path, state_dir, dirs):
    sock_dir, other_dir = dirs
    sock = os.path.join(sock_dir, "app.sock")
    sim, fw = start(tmp_path, state_dir, sock, extra=f"app_group = {NOBODY}\n")  # nobody may write to the file
    try:
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == NOBODY
        app = owner_socket(os.path.join(sock_dir, "owner.sock"))
        assert status(app, sock) == 0
        assert as_nobody(sock, os.path.join(other_dir, "nobody.sock")) == "silent"
        assert status(app, sock) == 1  # counted, and the owner is still answered
        assert re.search(rf"fw: app datagram refused: sender uid {NOBODY} \(owner 0\)", fw.output()), fw.output()
        # The firmware process dumps no core (RLIMIT_CORE 0; under qemu this is qemu's process, which passes it on).
        limits = open(f"/proc/{fw.proc.pid}/limits").read()
        assert re.search(r"Max core file size\s+0\s+0\s", limits), limits
        assert fw.stop() == 0, fw.output()
        assert not os.path.exists(sock)  # removed at exit
    finally:
        fw.stop()
        sim.close()


@root_only
def test_default_mode_keeps_a_second_user_out(tmp_path, state_dir, dirs):
    sock_dir, other_dir = dirs
    sock = os.path.join(sock_dir, "app.sock")
    sim, fw = start(tmp_path, state_dir, sock)
    try:
        st = os.lstat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
        assert as_nobody(sock, os.path.join(other_dir, "nobody.sock")) == "eacces"
        app = owner_socket(os.path.join(sock_dir, "owner.sock"))
        assert status(app, sock) == 0  # refused by the kernel: never reached the firmware
    finally:
        fw.stop()
        sim.close()
