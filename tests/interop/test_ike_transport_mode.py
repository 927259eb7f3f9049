"""Transport mode against the lab's stock strongSwan 5.9.8 (charon + kernel-libipsec, scripts/ike-lab): it cannot be
had on this machine, and these tests show what the server does instead (docs/ike-proxy.md, "Transport mode").

- libipsec refuses every SA that is not tunnel mode (src/libipsec/ipsec_sa.c, ipsec_sa_create: "IPsec SA:
  unsupported mode"), and its inbound path delivers only next header 4 or 41 (ipsec_processor.c), never a bare
  UDP payload (17). The kernel has no ESP either (`ip xfrm state add ... proto esp` fails), so no server here can
  hold a transport-mode SA.
- Proxy-initiated (the handset's key request): the server agrees to transport mode in IKE, fails to install it
  and answers NO_PROPOSAL_CHOSEN: no CHILD_SA, no key record.
- Server-initiated: the proxy (its kernel interface installs nothing) agrees and its plugin reports the SA up, in
  transport mode, between the IKE endpoints; the server then fails to install it and DELETEs it at once.
- A server child with `mode = transport` and subnet selectors (what a user might write) refuses the proxy's
  tunnel-mode request with TS_UNACCEPTABLE: in transport mode charon narrows a child's selectors to the IKE
  addresses, which its subnets do not contain.

Needs root and the handset-proxy plugin (scripts/setup)."""
import os
import time
from pathlib import Path

import pytest

from test_ike_proxy_keys import CONN, HANDSET_ID, KeyClient, lab  # noqa: F401 (lab is the fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and two charon daemons")

ESP = "aes256gcm16"


def load_server(lab, child):
    """Replaces the server's conn `hs`: IKE from 4500 to the proxy's own NAT-T port (no relay in these tests), child
    `hs` with the lines given."""
    env = lab.env
    f = lab.dir / "srv-swanctl-transport.conf"
    f.write_text(f"""connections {{
  hs {{
    version = 2
    local_addrs = {env['SRV_ADDR']}
    remote_addrs = {env['PUB_ADDR']}
    local_port = 4500
    remote_port = {env['PROXY_NATT_PORT']}
    proposals = aes256-sha256-x25519
    local {{
      auth = psk
      id = {env['SRV_ID']}
    }}
    remote {{
      auth = psk
      id = %any
    }}
    children {{
      hs {{
{child}
        esp_proposals = {ESP}
        start_action = none
      }}
    }}
  }}
}}
""")
    lab.swanctl("srv", "--load-conns", "--file", str(f))


def load_proxy_transport(lab):
    """The lab's proxy conn (and the server's PSK for it), its child asking for transport mode between the IKE
    addresses (`dynamic` selectors, charon's default)."""
    lab.load_proxy_conn(ESP)
    f = lab.dir / "proxy-swanctl.conf"
    lines = [line for line in f.read_text().splitlines() if "_ts = " not in line]
    f.write_text("\n".join(lines).replace("mode = tunnel", "mode = transport") + "\n")
    lab.swanctl("proxy", "--load-conns", "--file", str(f))


def swanctl_fails(lab, side, *args):
    try:
        lab.swanctl(side, *args)
    except AssertionError as e:
        return str(e)
    raise AssertionError(f"swanctl {args} on {side} succeeded")


def no_record(client, seconds):
    """The events the key socket delivered within `seconds` (none expected)."""
    try:
        _, rec = client.record(timeout=seconds)
        return [rec["event"]]
    except TimeoutError:
        return []


def server_children(lab):
    return [line for line in lab.swanctl("srv", "--list-sas").splitlines() if ", reqid " in line]


def srv_log(lab):
    return Path(lab.env["SRV_LOG"]).read_text()


def test_server_cannot_install_the_transport_mode_sa_the_proxy_asks_for(lab):
    load_server(lab, "        mode = transport")
    load_proxy_transport(lab)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        out = swanctl_fails(lab, "proxy", "--initiate", "--ike", CONN, "--child", "hs", "--timeout", "10")
        assert "N(USE_TRANSP)" in out and "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built" in out, out
        log = srv_log(lab)
        assert "IPsec SA: unsupported mode" in log and "unable to install inbound and outbound IPsec SA" in log, log
        # The IKE_SA stands (charon keeps it), with no CHILD_SA; the plugin derived no keys, so no record.
        assert "ESTABLISHED" in lab.swanctl("srv", "--list-sas") and server_children(lab) == []
        assert no_record(client, 1) == []
    finally:
        client.close()


def test_a_server_initiated_transport_mode_sa_is_up_at_the_proxy_then_deleted_by_the_server(lab):
    load_server(lab, "        mode = transport")
    load_proxy_transport(lab)
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        out = swanctl_fails(lab, "srv", "--initiate", "--ike", "hs", "--child", "hs", "--timeout", "10")
        assert "IPsec SA: unsupported mode" in out and "sending DELETE for ESP CHILD_SA" in out, out
        _, up = client.record()
        # The proxy agreed: transport mode, selectors the IKE endpoints themselves. The handset's end is its public
        # address (here the proxy's own, the lab has no relay), not an inner one.
        assert (up["event"], up["initiator"], up["mode"]) == ("up", "0", "transport"), up
        assert up["local_ts"] == f"{lab.env['PUB_ADDR']}/32" and up["remote_ts"] == f"{lab.env['SRV_ADDR']}/32", up
        _, down = client.record(timeout=5)
        assert down["event"] == "down" and (down["spi_in"], down["spi_out"]) == (up["spi_in"], up["spi_out"]), down
        assert server_children(lab) == []
    finally:
        client.close()


def test_a_transport_child_with_subnets_refuses_the_proxys_tunnel_request(lab):
    load_server(lab, f"        local_ts = {lab.env['SRV_INNER']}/32\n        remote_ts = {lab.env['HANDSET_NET']}\n"
                     "        mode = transport")
    lab.load_proxy_conn(ESP)  # the proxy's own kind of child: tunnel, the handset's inner address
    client = KeyClient(lab.env["KEYS_SOCK"])
    try:
        out = swanctl_fails(lab, "proxy", "--initiate", "--ike", CONN, "--child", "hs", "--timeout", "10")
        assert "received TS_UNACCEPTABLE notify, no CHILD_SA built" in out, out
        assert "traffic selectors 10.200.0.1/32 === 10.201.0.5/32 unacceptable" in srv_log(lab)
        assert server_children(lab) == [] and no_record(client, 1) == []
    finally:
        client.close()
