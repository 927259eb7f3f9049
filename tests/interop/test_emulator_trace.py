"""`handset-emu run --trace` shows the AT dialogue on stderr: the firmware's commands (AT>) and the module's
answers (AT<), with SMS PDUs as the hex AT+CMGS carries them (3GPP TS 27.005 §3.5.1, §4.3)."""
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))


def test_trace_shows_the_at_dialogue_of_a_login():
    r = subprocess.run([EMU, "run", "--scenario", "login", "--trace"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    lines = r.stderr.splitlines()
    sent = [l for l in lines if l.startswith("AT> ")]
    got = [l for l in lines if l.startswith("AT< ")]
    assert "AT> ATE0" in sent and "AT< OK" in got
    # The login's key-delegation message goes up as an SMS: the command, the prompt, the PDU ended by Ctrl-Z.
    i = next(i for i, l in enumerate(lines) if l.startswith("AT> AT+CMGS="))
    assert lines[i + 1] == "AT< > "
    assert re.fullmatch(r"AT> [0-9A-F]+ <\^Z>", lines[i + 2]), lines[i + 2]
    # The gateway's answer arrives as a stored SMS the firmware reads.
    assert any(l.startswith('AT< +CMTI: "SM",') for l in got)
    assert any(l.startswith("AT> AT+CMGR=") for l in sent)
    # Without --trace there is no dialogue.
    q = subprocess.run([EMU, "run", "--scenario", "login"], capture_output=True, text=True, timeout=120)
    assert q.returncode == 0
    assert not any(l.startswith(("AT> ", "AT< ")) for l in q.stderr.splitlines())
