"""The handset-proxy charon plugin's key records, checked with code we did not write: a stock strongSwan server
(charon + kernel-libipsec, in its own netns, scripts/ike-lab) negotiates with the proxy charon; scapy then seals
ESP-in-UDP with the record's key_out/spi_out, the server's libipsec decrypts it and its UDP echo answers, and scapy
opens the answer with key_in/spi_in. Also: the key socket refuses other users, server-initiated exchanges and a
server rekey produce the records docs/ike-proxy.md promises."""

import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from scapy.all import IP, UDP, AsyncSniffer, Raw, raw
from scapy.layers.ipsec import ESP, SecurityAssociation

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "scripts/ike-lab"
PLUGIN = Path("/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and two charon daemons")

CONN = "hs-0011223344556677"
HANDSET_ID = "0011223344556677@handset.invalid"
PSK = "lab-psk-0011223344556677"
INNER = "10.201.0.5"
ALGS = {  # swanctl esp proposal -> (scapy algorithm, key||salt length)
    "aes128gcm16": ("AES-GCM", 20),
    "aes256gcm16": ("AES-GCM", 36),
    "chacha20poly1305": ("CHACHA20-POLY1305", 36),
}
FIELDS = ["v", "event", "ike_name", "child_name", "ike_id", "child_id", "initiator", "local_id", "remote_id", "local",
          "remote", "encr", "mode", "esn", "spi_in", "spi_out", "key_in", "key_out", "local_ts", "remote_ts", "soft",
          "hard"]


class Lab:
    def __init__(self, path):
        self.dir = path
        self.env = dict(line.split("=", 1) for line in (path / "lab.env").read_text().split())

    def swanctl(self, side, *args, timeout=20):
        """side 'srv' or 'proxy'; returns stdout; raises with stderr on failure."""
        conf, vici = (self.env["SRV_CONF"], self.env["SRV_VICI"]) if side == "srv" else \
            (self.env["PROXY_CONF"], self.env["PROXY_VICI"])
        r = subprocess.run(["swanctl", *args, "--uri", f"unix://{vici}"], capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, "STRONGSWAN_CONF": conf}, cwd=self.dir)
        assert r.returncode == 0, f"swanctl {args} on {side}: {r.stdout}{r.stderr}"
        return r.stdout

    def load_proxy_conn(self, esp, vip=False):
        """vip: ask the server for a virtual IP (vips = 0.0.0.0) instead of a fixed local_ts."""
        local = "vips = 0.0.0.0" if vip else "# no virtual IP"
        local_ts = "# local_ts: the virtual IP" if vip else f"local_ts = {INNER}/32"
        f = self.dir / "proxy-swanctl.conf"
        f.write_text(f"""connections {{
  {CONN} {{
    version = 2
    remote_addrs = {self.env['SRV_ADDR']}
    remote_port = 4500
    proposals = aes256-sha256-x25519
    {local}
    local {{
      auth = psk
      id = {HANDSET_ID}
    }}
    remote {{
      auth = psk
      id = {self.env['SRV_ID']}
    }}
    children {{
      hs {{
        {local_ts}
        remote_ts = {self.env['SRV_INNER']}/32
        esp_proposals = {esp}
        mode = tunnel
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-hs {{
    id-a = {HANDSET_ID}
    id-b = {self.env['SRV_ID']}
    secret = "{PSK}"
  }}
}}
""")
        self.swanctl("proxy", "--load-all", "--file", str(f))
        s = self.dir / "srv-secrets.conf"
        s.write_text(f'secrets {{\n  ike-hs {{\n    id-a = {self.env["SRV_ID"]}\n    id-b = {HANDSET_ID}\n'
                     f'    secret = "{PSK}"\n  }}\n}}\n')
        self.swanctl("srv", "--load-creds", "--file", str(s))

    def add_server_pool(self, pool):
        """Reloads the server's conn handing out virtual IPs from pool (inside its remote_ts)."""
        text = Path(self.env["SRV_SWANCTL"]).read_text().replace("    children {", "    pools = hs\n    children {", 1)
        f = self.dir / "srv-swanctl-pool.conf"
        f.write_text(text + f"pools {{\n  hs {{\n    addrs = {pool}\n  }}\n}}\n")
        self.swanctl("srv", "--load-pools", "--file", str(f))
        self.swanctl("srv", "--load-conns", "--file", str(f))

    def point_server_at(self, port):
        """Reloads the server's conn with remote_port = port (the proxy's own port_nat_t: no relay in this test),
        sent from 4500: from 500, charon would float the remote port to 4500 after NAT detection."""
        text = Path(self.env["SRV_SWANCTL"]).read_text().replace(
            "remote_port = 4500", f"remote_port = {port}\n    local_port = 4500")
        f = self.dir / "srv-swanctl-direct.conf"
        f.write_text(text)
        self.swanctl("srv", "--load-conns", "--file", str(f))


@pytest.fixture
def lab():
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} missing: scripts/setup builds it")
    path = Path(tempfile.mkdtemp(prefix="ike-lab-", dir="/tmp"))
    try:
        r = subprocess.run([str(LAB), "up", str(path)], timeout=60, capture_output=True, text=True)
        assert r.returncode == 0, f"ike-lab up failed: {r.stderr}"
        yield Lab(path)
    finally:
        subprocess.run([str(LAB), "down", str(path)], timeout=60)
        for log in ("proxy.log", "srv.log"):
            if (path / log).exists():
                print(f"--- {log}\n" + (path / log).read_text()[-3000:])
        shutil.rmtree(path, ignore_errors=True)


class KeyClient:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)

    def record(self, timeout=15):
        """The next record as (ordered list of keys, dict)."""
        self.sock.settimeout(timeout)
        msg = self.sock.recv(65536)
        assert msg, "key socket closed"
        text = msg.decode()
        assert text.endswith("\n")
        pairs = [line.split("=", 1) for line in text[:-1].split("\n")]
        return [k for k, _ in pairs], dict(pairs)

    def close(self):
        self.sock.close()


def check_record(keys, rec, event, initiator, esp, local_ts=f"{INNER}/32"):
    expected = FIELDS if event != "down" else [k for k in FIELDS if k not in ("key_in", "key_out")]
    assert keys == expected, keys
    assert rec["v"] == "1" and rec["event"] == event
    assert rec["ike_name"] == CONN and rec["child_name"] == "hs"
    assert rec["initiator"] == initiator
    assert rec["local_id"] == HANDSET_ID and rec["remote_id"] == "server.example"
    assert rec["encr"] == esp and rec["mode"] == "tunnel" and rec["esn"] == "0"
    assert rec["local_ts"] == local_ts and rec["remote_ts"] == "10.200.0.1/32"
    for k in ("spi_in", "spi_out"):
        assert len(rec[k]) == 8 and int(rec[k], 16) > 255, rec[k]
    if event != "down":
        assert len(bytes.fromhex(rec["key_in"])) == ALGS[esp][1] == len(bytes.fromhex(rec["key_out"]))
        assert rec["key_in"] != rec["key_out"]
        assert 0 < int(rec["soft"]) <= int(rec["hard"])


def server_spis(lab):
    """(in, out) SPIs of the server's CHILD_SAs as `swanctl --list-sas` prints them."""
    out = lab.swanctl("srv", "--list-sas")
    ins = [line.split()[1] for line in out.splitlines() if line.strip().startswith("in ")]
    outs = [line.split()[1] for line in out.splitlines() if line.strip().startswith("out ")]
    return [s.rstrip(",") for s in ins], [s.rstrip(",") for s in outs]


def esp_roundtrip(lab, rec, payload, seq=1):
    """scapy seals payload (ESP sequence number seq) for the server's echo with key_out/spi_out, and opens the
    echo with key_in/spi_in."""
    env = lab.env
    route = subprocess.run(["ip", "route", "get", env["SRV_ADDR"]], capture_output=True, text=True, check=True)
    assert f"dev {env['VETH_PUB']} " in route.stdout, "server address not behind our veth: nothing is sent"
    local_ip, local_port = rec["local"].rsplit(":", 1)
    remote_ip, remote_port = rec["remote"].rsplit(":", 1)
    assert (local_ip, remote_ip, remote_port) == (env["PUB_ADDR"], env["SRV_ADDR"], "4500"), rec
    local_port = int(local_port)
    inner_ip = rec["local_ts"].split("/")[0]
    scapy_alg = ALGS[rec["encr"]][0]
    out_sa = SecurityAssociation(ESP, spi=int(rec["spi_out"], 16), seq_num=seq, crypt_algo=scapy_alg,
                                 crypt_key=bytes.fromhex(rec["key_out"]), auth_algo="NULL",
                                 tunnel_header=IP(src=env["PUB_ADDR"], dst=env["SRV_ADDR"]),
                                 nat_t_header=UDP(sport=local_port, dport=4500))
    in_sa = SecurityAssociation(ESP, spi=int(rec["spi_in"], 16), crypt_algo=scapy_alg,
                                crypt_key=bytes.fromhex(rec["key_in"]), auth_algo="NULL",
                                tunnel_header=IP(src=env["SRV_ADDR"], dst=env["PUB_ADDR"]))
    sport = 40000 + os.getpid() % 1000
    inner = IP(src=inner_ip, dst=env["SRV_INNER"]) / UDP(sport=sport, dport=7) / Raw(payload)
    wire = raw(out_sa.encrypt(inner))

    spi_in = bytes.fromhex(rec["spi_in"])
    listening = threading.Event()
    sniffer = AsyncSniffer(iface=env["VETH_PUB"], store=True, count=1, started_callback=listening.set,
                           lfilter=lambda p: UDP in p and p[IP].src == env["SRV_ADDR"] and p[UDP].sport == 4500
                           and p[UDP].dport == local_port and bytes(p[UDP].payload)[:4] == spi_in)
    sniffer.start()
    assert listening.wait(5), "sniffer did not start"
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        s.sendto(wire, (env["SRV_ADDR"], 0))
    sniffer.join(timeout=10)
    if sniffer.running:
        sniffer.stop()
    got = sniffer.results or []
    assert got, "no ESP echo from the server on spi_in (see srv.log)"
    esp_bytes = bytes(got[0][UDP].payload)
    outer = IP(raw(IP(src=env["SRV_ADDR"], dst=env["PUB_ADDR"]) / UDP(sport=4500, dport=4500) / Raw(esp_bytes)))
    clear = in_sa.decrypt(outer)
    assert clear[IP].src == env["SRV_INNER"] and clear[IP].dst == inner_ip
    assert clear[UDP].sport == 7 and clear[UDP].dport == sport
    assert bytes(clear[UDP].payload) == payload


def initiate(lab, esp):
    t0 = time.monotonic()
    lab.swanctl("proxy", "--initiate", "--ike", CONN, "--child", "hs", "--timeout", "10")
    return time.monotonic() - t0


@pytest.mark.parametrize("esp", list(ALGS))
def test_proxy_initiated_keys_work_with_stock_server(lab, esp):
    lab.load_proxy_conn(esp)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        took = initiate(lab, esp)
        print(f"swanctl --initiate ({esp}) took {took * 1000:.0f} ms")
        keys, rec = client.record()
        check_record(keys, rec, "up", "1", esp)
        assert rec["local"] == f"{lab.env['PUB_ADDR']}:{lab.env['PROXY_NATT_PORT']}"
        ins, outs = server_spis(lab)
        assert ins == [rec["spi_out"]] and outs == [rec["spi_in"]], (ins, outs)
        esp_roundtrip(lab, rec, f"through the proxy's keys with {esp}".encode())
        # and again: the server's replay window and the proxy never sending on the SA leave it usable
        esp_roundtrip(lab, rec, b"second datagram", seq=2)
        log = (lab.dir / "proxy.log").read_text()
        assert rec["key_in"] not in log and rec["key_out"] not in log
        # the plugin's kernel-net names no local addresses: MOBIKE tells the server none of the gateway host's
        assert "additional MOBIKE peer address" not in (lab.dir / "srv.log").read_text()
    finally:
        client.close()


def test_key_socket_refuses_other_users(lab):
    lab.load_proxy_conn("aes128gcm16")
    sock = lab.env["KEYS_SOCK"]
    assert os.stat(sock).st_mode & 0o777 == 0o660
    root_client = KeyClient(sock)
    probe = textwrap.dedent("""\
        import socket, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(sys.argv[1])
        except OSError as e:
            print('connect', e.errno); sys.exit()
        s.settimeout(5)
        try:
            print('recv', len(s.recv(100)))
        except OSError as e:
            print('recv-err', e.errno)
        """)

    def as_nobody():
        r = subprocess.run(["/usr/bin/python3", "-c", probe, sock], user="nobody", group="nogroup", extra_groups=[],
                           capture_output=True, text=True, timeout=15)
        return r.stdout.strip()

    try:
        os.chmod(lab.dir, 0o711)
        # The file mode alone keeps nobody out...
        assert as_nobody() == "connect 13"
        # ...and with the mode opened up, the plugin's SO_PEERCRED check closes the connection unread.
        os.chmod(sock, 0o666)
        assert as_nobody() in ("recv 0", "recv-err 104")
        assert "refused key client" in (lab.dir / "proxy.log").read_text()
        # The refused client did not replace the admitted one.
        initiate(lab, "aes128gcm16")
        keys, rec = root_client.record()
        assert rec["event"] == "up"
        # An admitted newcomer does: the old client sees the socket close.
        newcomer = KeyClient(sock)
        try:
            lab.swanctl("proxy", "--rekey", "--child", "hs")
            assert newcomer.record()[1]["event"] == "rekeyed"
            root_client.sock.settimeout(5)
            assert root_client.sock.recv(100) == b""
        finally:
            newcomer.close()
    finally:
        root_client.close()


def test_server_initiated_and_rekeyed(lab):
    esp = "aes256gcm16"
    lab.load_proxy_conn(esp)
    lab.point_server_at(int(lab.env["PROXY_NATT_PORT"]))
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        lab.swanctl("srv", "--initiate", "--ike", "hs", "--child", "hs", "--timeout", "10")
        keys, up = client.record()
        check_record(keys, up, "up", "0", esp)
        esp_roundtrip(lab, up, b"server-initiated")

        lab.swanctl("srv", "--rekey", "--child", "hs")
        keys, new = client.record()
        check_record(keys, new, "rekeyed", "0", esp)
        assert new["child_id"] != up["child_id"]
        assert {new["spi_in"], new["spi_out"]}.isdisjoint({up["spi_in"], up["spi_out"]})
        assert new["key_in"] != up["key_in"]
        esp_roundtrip(lab, new, b"after the rekey")
        # the old SA goes down once charon drops it (delete_rekeyed_delay, 5 s by default)
        keys, down = client.record(timeout=20)
        check_record(keys, down, "down", "0", esp)
        assert (down["child_id"], down["spi_in"], down["spi_out"]) == (up["child_id"], up["spi_in"], up["spi_out"])
    finally:
        client.close()


def test_virtual_ip_from_server_pool_is_the_local_selector(lab):
    """The server's pool address becomes the CHILD_SA's local selector; the gateway host never gets it."""
    pool_ip = "10.201.128.1"
    lab.add_server_pool("10.201.128.0/24")
    lab.load_proxy_conn("chacha20poly1305", vip=True)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, "chacha20poly1305")
        keys, rec = client.record()
        check_record(keys, rec, "up", "1", "chacha20poly1305", local_ts=f"{pool_ip}/32")
        assert pool_ip not in subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        # nor a route: kernel-netlink would have used table 220
        assert subprocess.run(["ip", "route", "show", "table", "220"], capture_output=True, text=True).stdout == ""
        esp_roundtrip(lab, rec, b"from the virtual IP")
    finally:
        client.close()


def test_proxy_rekey_is_rekeyed_with_initiator_keys(lab):
    """A rekey the proxy starts (CREATE_CHILD_SA as initiator): the new keys work, with initiator=1."""
    esp = "aes128gcm16"
    lab.load_proxy_conn(esp)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, esp)
        _, up = client.record()
        lab.swanctl("proxy", "--rekey", "--child", "hs")
        keys, new = client.record()
        check_record(keys, new, "rekeyed", "1", esp)
        assert {new["spi_in"], new["spi_out"]}.isdisjoint({up["spi_in"], up["spi_out"]})
        assert abs(int(new["spi_in"], 16) - int(up["spi_in"], 16)) > 1, "inbound SPIs look sequential"
        esp_roundtrip(lab, new, b"after the proxy's rekey")
    finally:
        client.close()


def test_reauthentication_is_down_then_up(lab):
    """IKE reauthentication (break-before-make, charon's default) replaces the CHILD_SA: down, then a new up."""
    esp = "aes128gcm16"
    lab.load_proxy_conn(esp)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, esp)
        _, first = client.record()
        lab.swanctl("proxy", "--rekey", "--ike", CONN, "--reauth")
        keys, down = client.record()
        check_record(keys, down, "down", "1", esp)
        assert (down["ike_id"], down["spi_in"]) == (first["ike_id"], first["spi_in"])
        keys, up = client.record()
        check_record(keys, up, "up", "1", esp)
        assert up["ike_id"] != first["ike_id"] and up["spi_in"] != first["spi_in"]
        esp_roundtrip(lab, up, b"after reauthentication")
    finally:
        client.close()


def test_server_delete_is_down(lab):
    """The server deleting the IKE_SA (and with it the CHILD_SA) gives a down record at once, with the SA's SPIs."""
    esp = "chacha20poly1305"
    lab.load_proxy_conn(esp)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        initiate(lab, esp)
        _, up = client.record()
        t0 = time.monotonic()
        lab.swanctl("srv", "--terminate", "--ike", "hs", "--timeout", "10")
        keys, down = client.record(timeout=5)
        check_record(keys, down, "down", "1", esp)
        assert (down["child_id"], down["spi_in"], down["spi_out"]) == (up["child_id"], up["spi_in"], up["spi_out"])
        assert time.monotonic() - t0 < 3
    finally:
        client.close()
