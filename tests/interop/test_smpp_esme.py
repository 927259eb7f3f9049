"""Our ESMEs (`handset-emu esme`: the threaded one, and with --nio the swift-nio one the gateway daemon uses) against an SMSC we did not write: the `smpp34` server from PyPI (Rust core, asyncio).

The smpp34 server accepts the bind, takes a 300-octet binary message as three submit_sm (data_coding 4, UDHI, port
16400, IEI 0x08 concatenation), throttles the first one with ESME_RTHROTTLED (0x58) so our client must back off and
resend it, then pushes one deliver_sm with a port UDH that our client must hand on and acknowledge.
"""
import asyncio
import json
import socket

import pytest
import smpp34

from modem_sim import HANDSET_EMU

PORT_UDH = bytes([0x06, 0x05, 0x04, 0x40, 0x10, 0x23, 0xF0])  # IEI 0x05: ports 16400 <- 9200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udh_fields(user_data):
    """IEIs of a UDH as {iei: value}, parsed here by hand (TS 23.040 §9.2.3.24), not by the code under test."""
    udhl, fields, i = user_data[0], {}, 1
    while i < 1 + udhl:
        iei, length = user_data[i], user_data[i + 1]
        fields[iei] = user_data[i + 2:i + 2 + length]
        i += 2 + length
    return fields, user_data[1 + udhl:]


async def scenario(client_args):
    port = free_port()
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="smpp34")
    await server.start()
    payload = bytes(range(256)) + bytes(range(44))
    proc = await asyncio.create_subprocess_exec(
        HANDSET_EMU, "esme", "--port", str(port), "--system-id", "handset-gw", "--password", "pw",
        "--source", "+15550199", "--to", "+15550100001", "--data", payload.hex(), "--receive", "1", "--timeout", "15", *client_args,
        stdout=asyncio.subprocess.PIPE)
    try:
        esme, parts, rejected = None, [], 0
        while len(parts) < 3:
            ev = await asyncio.wait_for(server.next(), 10)
            if isinstance(ev, smpp34.Esme):
                esme = ev
                assert ev.system_id == "handset-gw"
            elif isinstance(ev, smpp34.SubmitSmEvent):
                assert ev.esm_class & 0x40 and ev.data_coding == 0x04
                assert ev.destination_addr == "15550100001" and ev.dest_addr_ton == 1
                assert ev.source_addr == "15550199" and ev.source_addr_ton == 1
                if rejected == 0:
                    rejected += 1
                    ev.reject(smpp34.ESME_RTHROTTLED)
                    continue
                ev.accept(message_id="m%d" % len(parts))
                parts.append(ev.short_message)
        by_seq = {}
        for p in parts:
            fields, body = udh_fields(p)
            assert fields[0x05] == bytes([0x40, 0x10, 0x40, 0x10])
            ref_hi, ref_lo, total, seq = fields[0x08]
            assert total == 3
            by_seq[seq] = body
        assert sorted(by_seq) == [1, 2, 3]
        assert b"".join(by_seq[k] for k in (1, 2, 3)) == payload

        resp = await esme.deliver_sm("15550199", PORT_UDH + b"\xde\xad\xbe\xef", source_addr="15550100001",
                                     source_addr_ton=1, source_addr_npi=1, esm_class=0x40, data_coding=0x04)
        assert resp.is_success
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    delivers = [e for e in lines if e["event"] == "deliver"]
    assert len(delivers) == 1
    d = delivers[0]
    assert d["from"] == "+15550100001" and d["data"] == "deadbeef" and d["port-dst"] == 16400 and d["port-src"] == 9200
    done = lines[-1]
    assert done["event"] == "done" and done["ok"], done
    assert done["parts"] == 3 and done["acked"] == 3 and done["throttled"] == 1 and done["resent"] == 1
    assert done["malformed"] == 0 and done["binds"] == 1
    assert proc.returncode == 0


@pytest.mark.parametrize("client_args", [[], ["--nio"]], ids=["threaded", "nio"])
def test_our_esme_against_smpp34_server(client_args):
    asyncio.run(scenario(client_args))
