"""docs/key-delegation.md §6, what an sa-transfer may cover, through the Python reference (kd_reference.py).
The Swift side is Tests/GatewayTests/SATransferPolicyTests.swift."""
import kd_reference as kd

PEER = 0xC0000201  # 192.0.2.1
NET24 = (0xC0000200, 24, 0, kd.ANY, kd.ANY)  # rule = protect 192.0.2.0/24 any * *
FLOW = (PEER, 32, 17, kd.ANY, (7, 7))


def test_push_with_prefix_zero_needs_a_rule_that_wide():
    everything = (0, 0, 0, kd.ANY, kd.ANY)
    assert kd.sa_transfer_status(everything, protect_rules=[NET24]) == 7
    assert kd.sa_transfer_status(everything, protect_rules=[NET24, (0, 0, 0, kd.ANY, kd.ANY)]) == 0
    assert kd.sa_transfer_status(FLOW, protect_rules=[NET24]) == 0
    assert kd.sa_transfer_status(FLOW, protect_rules=[]) == 7


def test_answer_lies_within_its_request():
    request = (PEER, 17, 5000, 7)
    assert kd.sa_transfer_status((PEER, 32, 17, (5000, 5000), (7, 7)), request=request) == 0
    assert kd.sa_transfer_status((PEER, 32, 17, kd.ANY, (7, 7)), request=request) == 7  # every local port
    assert kd.sa_transfer_status((PEER, 24, 17, (5000, 5000), (7, 7)), request=request) == 7  # a whole network
    assert kd.sa_transfer_status((PEER + 1, 32, 17, (5000, 5000), (7, 7)), request=request) == 7  # another host
    assert kd.sa_transfer_status((PEER, 32, 17, kd.ANY, (7, 7)), request=(PEER, 17, 0, 7)) == 0  # asked for any


def test_pushes_per_peer_are_capped_and_ipv6_refused():
    assert kd.sa_transfer_status(FLOW, protect_rules=[NET24], pushed_from_peer=3) == 0
    assert kd.sa_transfer_status(FLOW, protect_rules=[NET24], pushed_from_peer=4) == 8
    assert kd.sa_transfer_status(FLOW, protect_rules=[NET24], pushed_from_peer=4, same_flow_pushed=True) == 0
    assert kd.sa_transfer_status(FLOW, ipv6=True, protect_rules=[NET24]) == 7


def test_a_tunnel_to_a_server_carries_its_inner_remote():
    # §4 flag bit 6: ESP goes to the server's public address (peer); the flow is to a service behind it.
    server, service = 0x0A630001, 0x0AC80001  # 10.99.0.1, 10.200.0.1
    request = (service, 17, 0, 7)
    with_remote = (kd.pair_remote(server, service), 32, 17, kd.ANY, (7, 7))
    without = (kd.pair_remote(server, None), 32, 17, kd.ANY, (7, 7))
    assert kd.sa_transfer_status(with_remote, request=request) == 0
    assert kd.sa_transfer_status(without, request=request) == 7
