"""`handset-emu run --server strongswan --server-config DIR` (issue 15): the lab's stock strongSwan server loads a
swanctl.conf and credentials the tests use nowhere else, written here from scratch the way a user would write their
own: another connection name, an address pool (the handset's inner address is a virtual IP from it: remote_ts is
the default, `dynamic`), ChaCha20-Poly1305 as the only ESP proposal, and certificate
authentication both ways with two CAs of its own (one for the server, one for handsets). The proxy checks the
server's certificate against the server CA named in proxy.conf and authenticates as the handset with a certificate
that provisioning issues from the handset CA (openssl; the key never in a file).

The handset gets its SA (its key request answered by SMS) and the echo from 10.200.0.1:7 comes back through the
server's libipsec; the server's list-sas shows that CHILD_SA with ChaCha20-Poly1305. The server's config holds no
PSK at all, so the exchange can only have been authenticated by certificates.

Needs root, strongSwan and the plugin (scripts/setup); otherwise skipped with the reason."""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))
PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-handset-proxy.so"

needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(PLUGIN) or not os.path.exists("/usr/lib/ipsec/charon"),
    reason="needs root, strongSwan and the handset-proxy plugin (scripts/setup)")

SWANCTL = """\
connections {
  roadwarriors {
    version = 2
    proposals = aes256-sha256-x25519
    pools = handsets
    local {
      auth = pubkey
      certs = vpn.pem
      id = vpn.other.example
    }
    remote {
      auth = pubkey
      cacerts = handset-ca.pem
      id = %any
    }
    children {
      echo {
        local_ts = 10.200.0.1/32
        esp_proposals = chacha20poly1305
      }
    }
  }
}
pools {
  handsets {
    addrs = 10.202.9.0/28
  }
}
"""

PROXY_CONF = """\
# what the proxy needs to talk to this server as the handset
server_id = vpn.other.example
server_ca = x509ca/server-ca.pem
handset_id = handset7@handsets.other.example
handset_ca_cert = handset-ca/handset-ca.pem
handset_ca_key = handset-ca/handset-ca.key
# the conn has a pool: the proxy asks for a virtual IP; the pool's first address is the handset's
virtual_ip = yes
handset_address = 10.202.9.1
"""


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(key, cert, cn):
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(key))
    openssl("req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-days", "2", "-out", str(cert),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def user_config(d: Path) -> Path:
    for sub in ["x509", "x509ca", "private", "handset-ca"]:
        (d / sub).mkdir(parents=True, exist_ok=True)
    make_ca(d / "server-ca.key", d / "x509ca/server-ca.pem", "Other Server CA")
    make_ca(d / "handset-ca/handset-ca.key", d / "handset-ca/handset-ca.pem", "Other Handset CA")
    # The server trusts the handset CA for its peers; its own certificate comes from the server CA.
    (d / "x509ca/handset-ca.pem").write_bytes((d / "handset-ca/handset-ca.pem").read_bytes())
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(d / "private/vpn.key"))
    openssl("req", "-x509", "-new", "-key", str(d / "private/vpn.key"), "-CA", str(d / "x509ca/server-ca.pem"),
            "-CAkey", str(d / "server-ca.key"), "-subj", "/CN=vpn.other.example", "-days", "2",
            "-out", str(d / "x509/vpn.pem"), "-addext", "subjectAltName=DNS:vpn.other.example",
            "-addext", "basicConstraints=critical,CA:FALSE")
    (d / "server-ca.key").unlink()  # the server never needs its CA's key
    (d / "swanctl.conf").write_text(SWANCTL)
    (d / "proxy.conf").write_text(PROXY_CONF)
    return d


@needs_lab
def test_a_users_own_swanctl_conf_chacha_only_certificates_of_other_cas(tmp_path):
    cfg = user_config(tmp_path / "server-config")
    r = subprocess.run([EMU, "run", "--server", "strongswan", "--server-config", str(cfg)], capture_output=True,
                       text=True, timeout=400, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    m = re.search(r"PASS\s+ike-handset-initia\S*\s.*server CHILD_SA ([0-9a-f]{8})/([0-9a-f]{8}) (\S+), "
                  r"packets in/out (\d+)/(\d+)", r.stdout)
    assert m, r.stdout
    assert m.group(3).startswith("CHACHA20_POLY1305"), m.group(0)
    assert int(m.group(4)) >= 1 and int(m.group(5)) >= 1, "the server's libipsec counted no ESP one way"
    # The handset's inner address is the pool's first address, the virtual IP the server assigned.
    assert re.search(r"packet gateway \S+, handset 10\.202\.9\.1 with the server config of ", r.stdout), r.stdout[:2000]
    # Only the scenarios a user's server supports by itself ran (it has no conn `hs` to initiate).
    assert "ike-server-initiated" not in r.stdout
    ns = re.search(r"\((hssrv\w+)\)", r.stdout).group(1)
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_lab
def test_a_server_ca_that_did_not_sign_the_servers_certificate_stops_the_run(tmp_path):
    """The same config, but proxy.conf names the handset CA as the server's: the server's certificate does not chain
    to it, so the handset's key request is answered 'authentication failed' and no SA is installed."""
    cfg = user_config(tmp_path / "server-config")
    (cfg / "proxy.conf").write_text(PROXY_CONF.replace("x509ca/server-ca.pem", "handset-ca/handset-ca.pem"))
    r = subprocess.run([EMU, "run", "--server", "strongswan", "--server-config", str(cfg),
                        "--scenario", "login", "--scenario", "ike-handset-initiated"],
                       capture_output=True, text=True, timeout=400, cwd=REPO)
    assert r.returncode == 1, r.stdout[-4000:]
    assert re.search(r"FAIL\s+ike-handset-initia", r.stdout), r.stdout[-4000:]
    m = re.search(r"auth (\d+)", r.stdout)
    assert m and int(m.group(1)) >= 1, r.stdout[-4000:]


def test_server_config_needs_the_strongswan_server():
    r = subprocess.run([EMU, "run", "--server-config", "/nonexistent"], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
    assert r.returncode != 0 and "--server-config needs --server strongswan" in r.stderr, r.stdout + r.stderr


@needs_lab
def test_the_handset_adopts_a_lease_other_than_its_provisioned_address(tmp_path):
    """The handset is provisioned with 10.202.9.9, the server's pool gives it 10.202.9.1: the gateway binds the lease
    and names it in the sa-transfer (docs/key-delegation.md §4 flag bit 7), the firmware adopts it, and its datagram
    from 10.202.9.1 reaches the echo and comes back (the server's counters 1/1 at least)."""
    cfg = user_config(tmp_path / "server-config")
    (cfg / "proxy.conf").write_text(PROXY_CONF.replace("10.202.9.1", "10.202.9.9"))
    r = subprocess.run([EMU, "run", "--server", "strongswan", "--server-config", str(cfg),
                        "--scenario", "login", "--scenario", "ike-handset-initiated"],
                       capture_output=True, text=True, timeout=400, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    m = re.search(r"PASS\s+ike-handset-initia\S*\s.*packets in/out (\d+)/(\d+)", r.stdout)
    assert m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1, r.stdout[-4000:]
    assert re.search(r"handset 10\.202\.9\.9 with the server config of ", r.stdout), r.stdout[:2000]
