"""Cross-check of our SMS PDU codec (handset-emu pdu) against python-gsmmodem-new's gsmmodem.pdu, both ways.

What python-gsmmodem-new 0.13.0 can and cannot do, checked below rather than assumed:
- encodeSmsSubmitPdu encodes text only (GSM 7-bit or UCS-2): no 8-bit data, no port addressing. Its 16-bit
  concat reference is unusable: the same `reference` is also written as the 1-octet TP-MR, so references
  above 255 raise ValueError.
- decodeSmsPdu reads 8-bit user data as Latin-1 text (all octets after the UDH), parses concat (0x00/0x08) and
  port (0x04/0x05) IEs, and ignores DCS coding groups other than 00xx (0xF4 is read as 7-bit).
- Its GSM 7-bit decoder loses the first character after a UDH that ends on a septet boundary (7 octets,
  e.g. a 16-bit concat IE alone); ModemManager's published vector shows it.

Run: HANDSET_EMU=.build-NAME/debug/handset-emu .venv/bin/python -m pytest -q tests/interop/test_pdu_gsmmodem.py
"""
import os
import random
import subprocess

import pytest
from gsmmodem import pdu as gp

EMU = os.environ.get("HANDSET_EMU", ".build/debug/handset-emu")


def emu(*args, check=True):
    p = subprocess.run([EMU, "pdu", *args], capture_output=True, text=True, timeout=20)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def our_encode(to, data, port=None, src_port=None, ref=None, extra=()):
    args = ["encode", "--to", to, "--data", data.hex(), "--cmgs", *extra]
    if port is not None:
        args += ["--port", str(port)]
    if src_port is not None:
        args += ["--src-port", str(src_port)]
    if ref is not None:
        args += ["--ref", str(ref)]
    lines = emu(*args).stdout.splitlines()
    assert len(lines) % 2 == 0
    parts = []
    for cmgs, hexpdu in zip(lines[0::2], lines[1::2]):
        assert cmgs.startswith("AT+CMGS=")
        assert hexpdu == hexpdu.upper() and hexpdu.startswith("00")
        parts.append((int(cmgs[len("AT+CMGS="):]), hexpdu))
    return parts


def our_decode(hexpdu):
    out = {}
    for line in emu("decode", hexpdu).stdout.splitlines():
        key, _, value = line.partition(": ")
        out[key] = value
    return out


def unescape(text):
    return text.replace("\\r", "\r").replace("\\n", "\n").replace("\\\\", "\\")


def ies(decoded):
    """Their UDH as {class name: IE}, checking there are no duplicates."""
    found = {}
    for ie in decoded.get("udh", []):
        name = type(ie).__name__
        assert name not in found
        found[name] = ie
    return found


def submit_to_deliver(submit: bytes, scts=bytes.fromhex("52111201000000")) -> bytes:
    """Re-wrap an SMS-SUBMIT as the SMS-DELIVER the recipient would read (TS 23.040 §9.2.2.1 / §9.2.2.2)."""
    i = 1 + submit[0]
    fo = submit[i]
    vpf = (fo >> 3) & 3
    i += 2  # first octet, TP-MR
    da_end = i + 2 + (submit[i] + 1) // 2
    address = submit[i:da_end]
    pid, dcs = submit[da_end], submit[da_end + 1]
    i = da_end + 2 + {0: 0, 2: 1, 1: 7, 3: 7}[vpf]
    return b"\x00" + bytes([(fo & 0x40) | 0x04]) + address + bytes([pid, dcs]) + scts + submit[i:]


# ---------------------------------------------------------------- ours -> theirs


@pytest.mark.parametrize("to,expected_number", [("+4917012345678", "+4917012345678"), ("0123456789", "0123456789")])
def test_single_part_8bit(to, expected_number):
    data = bytes(range(0, 256, 3))
    [(length, hexpdu)] = our_encode(to, data)
    theirs = gp.decodeSmsPdu(hexpdu)
    assert theirs["type"] == "SMS-SUBMIT"
    assert theirs["number"] == expected_number
    assert theirs["smsc"] is None
    assert theirs["tpdu_length"] == length
    assert "udh" not in theirs
    assert theirs["text"].encode("latin-1") == data


@pytest.mark.parametrize("port,src,iei", [(200, 201, 0x04), (9200, 9201, 0x05), (9200, None, 0x05), (16, 17000, 0x05)])
def test_ports_single_part(port, src, iei):
    data = b"\x00\x01key material stand-in\xff"
    [(length, hexpdu)] = our_encode("+4917012345", data, port=port, src_port=src)
    theirs = gp.decodeSmsPdu(hexpdu)
    pa = ies(theirs)["PortAddress"]
    assert pa.id == iei
    assert (pa.destination, pa.source) == (port, src or 0)
    assert "Concatenation" not in ies(theirs)
    assert theirs["tpdu_length"] == length
    assert theirs["text"].encode("latin-1") == data


@pytest.mark.parametrize("size,port,ref,iei", [
    (141, None, 7, 0x00), (300, 9200, 0x42, 0x00), (600, 200, 255, 0x00), (400, None, 0x1234, 0x08), (1000, 9200, 65535, 0x08),
])
def test_concatenated_parts(size, port, ref, iei):
    rng = random.Random(size)
    data = bytes(rng.randrange(256) for _ in range(size))
    parts = our_encode("+4917012345", data, port=port, ref=ref)
    assert len(parts) > 1
    joined = b""
    for seq, (length, hexpdu) in enumerate(parts, 1):
        theirs = gp.decodeSmsPdu(hexpdu)
        udh = ies(theirs)
        c = udh["Concatenation"]
        assert c.id == iei
        assert (c.reference, c.parts, c.number) == (ref, len(parts), seq)
        if port is None:
            assert "PortAddress" not in udh
        else:
            assert udh["PortAddress"].destination == port
        assert theirs["tpdu_length"] == length
        # TS 23.040 §9.2.3.16: at most 140 octets of user data, UDH included.
        tpdu = bytes.fromhex(hexpdu)[1:]
        udl_at = 2 + 2 + (tpdu[2] + 1) // 2 + 2
        assert tpdu[udl_at] <= 140 and len(tpdu) - udl_at - 1 == tpdu[udl_at]
        joined += theirs["text"].encode("latin-1")
    assert joined == data


def test_random_sizes_round_trip_through_their_decoder():
    rng = random.Random(23040)
    for _ in range(12):
        size = rng.randrange(0, 700)
        port = rng.choice([None, 80, 2948, 9200])
        data = bytes(rng.randrange(256) for _ in range(size))
        parts = our_encode("+15551234567", data, port=port, ref=rng.randrange(256))
        got = b"".join(gp.decodeSmsPdu(h)["text"].encode("latin-1") for _, h in parts)
        assert got == data, (size, port)


# ---------------------------------------------------------------- theirs -> ours

TEXTS = [
    "Hello World!",
    "@{tést}! [~] \\ ^ | €",  # extension table after ESC
    "x" * 160,
    "Lorem ipsum dolor sit amet, " * 12,  # 336 chars: 3 GSM 7-bit parts with 1 fill bit after the UDH
    "世界您好！",
    "Привет, мир! " * 8,  # 104 UCS-2 chars: 2 parts
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("as_deliver", [False, True])
def test_their_text_pdus_decode_the_same(text, as_deliver):
    pdus = gp.encodeSmsSubmitPdu("+27820001111", text, reference=0x5A, requestStatusReport=False)
    joined = ""
    for seq, p in enumerate(pdus, 1):
        raw = bytes(p.data)
        if as_deliver:
            raw = submit_to_deliver(raw)
        hexpdu = raw.hex().upper()
        ours = our_decode(hexpdu)
        theirs = gp.decodeSmsPdu(hexpdu)
        assert ours["type"] == theirs["type"] == ("SMS-DELIVER" if as_deliver else "SMS-SUBMIT")
        assert ours["from" if as_deliver else "to"] == theirs["number"] == "+27820001111"
        assert unescape(ours["text"]) == theirs["text"]
        c = ies(theirs).get("Concatenation")
        if len(pdus) == 1:
            assert c is None and ours["concat-ref"] == "-"
        else:
            assert (int(ours["concat-ref"]), int(ours["concat-total"]), int(ours["concat-seq"])) == \
                (c.reference, c.parts, c.number) == (0x5A, len(pdus), seq)
        joined += unescape(ours["text"])
    assert joined == text


# Published SMS-DELIVER PDUs both decoders read the same way.
SHARED_VECTORS = [
    # python-gsmmodem test/test_pdu.py test_decode
    "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
    "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
    "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
    "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20",
    # ModemManager src/tests/test-sms-part-3gpp.c (test_pdu2 alphanumeric UCS-2, test_pdu_multipart 2/2)
    "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
    "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10",
    # nRF Connect SDK tests/lib/sms (port addressing, 16-bit port + concat 1/1, 8-bit data)
    "004408812143658700041210032143652b1b0b05040b84000000037c01010102030405060708090A0B0C0D0E0F",
]


@pytest.mark.parametrize("hexpdu", SHARED_VECTORS)
def test_published_deliver_vectors_agree(hexpdu):
    ours = our_decode(hexpdu)
    theirs = gp.decodeSmsPdu(hexpdu)
    assert ours["type"] == theirs["type"] == "SMS-DELIVER"
    assert ours["from"] == theirs["number"]
    assert ours["smsc"] == (theirs["smsc"] or "-")
    if ours["alphabet"] == "8bit":
        assert bytes.fromhex(ours["data"]) == theirs["text"].encode("latin-1")
    else:
        assert unescape(ours["text"]) == theirs["text"]
    udh = ies(theirs)
    c, pa = udh.get("Concatenation"), udh.get("PortAddress")
    assert ours["concat-ref"] == (str(c.reference) if c else "-")
    assert ours["concat-total"] == (str(c.parts) if c else "-")
    assert ours["concat-seq"] == (str(c.number) if c else "-")
    assert ours["port-dst"] == (str(pa.destination) if pa else "-")
    assert ours["port-src"] == (str(pa.source) if pa else "-")


# ---------------------------------------------------------------- known limits, pinned


def test_their_16bit_reference_is_unusable():
    with pytest.raises(ValueError):
        gp.encodeSmsSubmitPdu("+27820001111", "x" * 200, reference=300)


def test_septet_boundary_udh_where_they_lose_a_character():
    # ModemManager test_pdu_udhi: expected text starts "Welkom"; UDH 06 08 04 0010 02 01 is 7 octets, no fill bits.
    hexpdu = ("07911356131313F64004850120390011609232239180A006080400100201D7327BFD6EB340E2321BF46E83EA7790F59D1E97DBE1341B442F83C465763D3DA797E56537C81D0ECB41AB59CC1693C16031D96C064241E5656838AF03A96230982A269BCD462917C8FA4E8FCBED709A0D7ABBE9F6B0FB5C7683D27350984D4FABC9A0B33C4C4FCF5D20EBFB2D079DCB62793DBD06D9C36E50FB2D4E97D9A0B49B5E96BBCB")
    ours = our_decode(hexpdu)
    theirs = gp.decodeSmsPdu(hexpdu)
    assert unescape(ours["text"]).startswith("Welkom, bel om uw Voicemail")
    assert theirs["text"] == unescape(ours["text"])[1:]
    assert (ours["concat-ref"], ours["concat-total"], ours["concat-seq"]) == ("16", "2", "1")


@pytest.mark.parametrize("bad,why", [
    ("00040A91214365870900001220A00285438009123456KLAB", "not hex"),
    ("0004169121436587092143658709F10000122090028543800831D98C56B3DD70", "bad address"),
    ("00040A9121436587090004122012320544800A010203040506070809", "truncated"),
    ("0043010C910661345542F60008A0050003000301306F3044", "unsupported message type"),
])
def test_malformed_input_fails_clearly(bad, why):
    p = emu("decode", bad, check=False)
    assert p.returncode != 0
    assert p.stdout == ""
    assert why in p.stderr


def test_encode_rejects_bad_arguments():
    for args in (["--to", "+12x", "--data", "00"], ["--to", "+1", "--data", "0"], ["--to", "+1", "--data", "00", "--src-port", "5"]):
        p = emu("encode", *args, check=False)
        assert p.returncode != 0 and p.stdout == "" and p.stderr


# ModemManager test_pdu_insufficient_data: TP-UDL 11 septets, 9 octets (10 septets) present. Binary data whose
# user data is short (third case above) already fails as truncated.
SHORT_TEXT = "07912143658709F1040B918100551512F20000111010214365000BE8329BFD4697D9EC37"


def test_text_shorter_than_tp_udl_fails_naming_the_lengths():
    p = emu("decode", SHORT_TEXT, check=False)
    assert p.returncode != 0
    assert p.stdout == ""
    assert "user data shorter than TP-UDL" in p.stderr
    assert "TP-UDL announces 11 septets, the PDU carries 10" in p.stderr


def test_lenient_prints_what_it_could_read():
    p = emu("decode", "--lenient", SHORT_TEXT)
    out = dict(line.split(": ", 1) for line in p.stdout.splitlines())
    assert out["text"] == "hellohello"
    assert out["clipped"] == "user data shorter than TP-UDL"
    assert out["from"] == "+18005551212"
