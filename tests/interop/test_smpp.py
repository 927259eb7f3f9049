"""python smpplib (PyPI, not ours) against the SMS centre's SMPP 3.4 side of `handset-emu modem --smpp-port`.

smpplib binds as a transceiver with a password, submits a port-addressed binary SMS (data_coding 0x04, esm_class UDHI)
to the module's number, and we read it back out of the simulated module with AT+CMGR; python-gsmmodem decodes that
SMS-DELIVER. Then the module sends a binary SMS-SUBMIT with AT+CMGS, and smpplib must receive it as a deliver_sm.
"""
import time

import pytest
import smpplib.client
import smpplib.consts
from gsmmodem.pdu import decodeSmsPdu

from modem_sim import AT, Simulator

MODULE_NUMBER = "15550100001"    # SubscriberIdentity.ownNumber
GATEWAY_NUMBER = "15550199"
PORT_UDH = bytes([0x06, 0x05, 0x04, 0x40, 0x10, 0x40, 0x10])  # IEI 0x05: ports 16400 -> 16400


@pytest.fixture
def sim():
    s = Simulator("simcom", smpp=True, smpp_password="secret")
    yield s
    s.close()


def bound_client(sim, received):
    client = smpplib.client.Client("127.0.0.1", sim.smpp_port, timeout=5, allow_unknown_opt_params=True)
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    client.bind_transceiver(system_id="smpplib", password="secret")
    return client


def test_smpplib_submits_binary_and_receives_mo(sim):
    received, sent = [], []
    client = bound_client(sim, received)
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    at = AT(sim.link)
    try:
        assert "OK" in at.command("ATE0")
        assert "OK" in at.command("AT+CMGF=0")

        client.send_message(source_addr_ton=smpplib.consts.SMPP_TON_INTL, source_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                            source_addr=GATEWAY_NUMBER, dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN, destination_addr=MODULE_NUMBER,
                            esm_class=0x40, data_coding=0x04, short_message=PORT_UDH + b"\xC0\xFF\xEE")
        client.read_once()
        assert len(sent) == 1 and sent[0].status == smpplib.consts.SMPP_ESME_ROK and sent[0].message_id

        at.read((b'+CMTI: "SM",0',), 5)
        reply = at.command("AT+CMGR=0")
        lines = [l for l in reply.split("\r\n") if l]
        assert lines[0].startswith("+CMGR: 0,,")
        sms = decodeSmsPdu(lines[1])
        assert sms["type"] == "SMS-DELIVER"
        assert sms["number"] == "+" + GATEWAY_NUMBER
        ports = [ie for ie in sms["udh"] if ie.id == 0x05]
        assert len(ports) == 1 and ports[0].destination == 16400 and ports[0].source == 16400
        assert lines[1].upper().endswith("0A060504401040" + "10C0FFEE")  # UDL 10, UDH kept octet for octet

        # MO: SMS-SUBMIT (3GPP TS 23.040 §9.2.2.2), UDHI, to +15550199, DCS 0x04, UD = port UDH + DEADBEEF.
        submit = "00" + "41" + "00" + "0891" + "51551099" + "00" + "04" + "0B" + "06050440104010" + "DEADBEEF"
        assert "> " in at.command("AT+CMGS=%d" % (len(submit) // 2 - 1), until=(b"> ",))
        at.port.write(submit.encode() + b"\x1a")
        assert "+CMGS:" in at.read((b"OK\r\n", b"ERROR"))
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            client.read_once()
        assert len(received) == 1
        mo = received[0]
        assert mo.command == "deliver_sm"
        assert mo.source_addr == MODULE_NUMBER.encode() and mo.source_addr_ton == smpplib.consts.SMPP_TON_INTL
        assert mo.destination_addr == GATEWAY_NUMBER.encode()
        assert mo.esm_class & 0x40 and mo.data_coding == 0x04
        assert mo.short_message == PORT_UDH + bytes.fromhex("DEADBEEF")
    finally:
        at.close()
        client.unbind()
        client.disconnect()


def test_smpplib_bind_with_wrong_password_is_refused(sim):
    client = smpplib.client.Client("127.0.0.1", sim.smpp_port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as e:
            client.bind_transceiver(system_id="smpplib", password="wrong")
        assert e.value.args[1] == smpplib.consts.SMPP_ESME_RINVPASWD
    finally:
        client.disconnect()
