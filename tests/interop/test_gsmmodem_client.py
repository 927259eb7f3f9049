"""python-gsmmodem-new's GsmModem against `handset-emu modem`: a modem other people's code recognises.

Starts the simulator on a pty, lets GsmModem connect() and read identity, signal and operator, sends an SMS in PDU mode
and checks the simulator's JSON event line, then has the SMS centre deliver an SMS that must reach smsReceivedCallback.
"""
import queue

import pytest
from gsmmodem.modem import GsmModem

from modem_sim import Simulator


@pytest.fixture(params=["simcom", "quectel", "ublox", "generic", "sim800"])
def sim(request):
    s = Simulator(request.param, sms_centre=True)
    yield s
    s.close()


def test_gsmmodem_identity_send_and_receive(sim):
    received = queue.Queue()
    modem = GsmModem(sim.link, 115200, smsReceivedCallbackFunc=received.put)
    modem.smsTextMode = False
    try:
        modem.connect()
        assert modem.manufacturer in ("SIMCOM INCORPORATED", "Quectel", "u-blox", "Generic", "SIMCOM_Ltd")
        assert modem.model in ("SIMCOM_SIM7600E-H", "BG96", "SARA-R410M-02B", "GSM-LTE Module", "SIMCOM_SIM800L")
        assert modem.imei == "861234050012347"
        assert modem.imsi == "001010123456789"
        assert 0 <= modem.signalStrength <= 31
        assert modem.networkName == "Handset Emu"

        modem.sendSms("+15550123456", "Hello from GsmModem", waitForDeliveryReport=False)
        mo = sim.wait_event(lambda e: e["event"] == "sms-mo", 5)
        assert mo["to"] == "+15550123456"
        assert mo["text"] == "Hello from GsmModem"
        assert mo["pdu"]  # the PDU as carried, in hex

        reply = sim.control({"op": "send", "from": "+15550987654", "text": "Hi handset"})
        assert reply["ok"] and reply["parts"] == 1
        sms = received.get(timeout=10)
        assert sms.number == "+15550987654"
        assert sms.text == "Hi handset"
    finally:
        modem.close()
