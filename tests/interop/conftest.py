"""Fixtures shared by the emulator tests (the firmware against the modem simulator)."""
import subprocess

import pytest

from modem_sim import HANDSET_EMU


@pytest.fixture
def state_dir(tmp_path):
    subprocess.run([HANDSET_EMU, "provision", "--registry", str(tmp_path / "reg.sqlite"), "--state-dir",
                    str(tmp_path / "state"), "--msisdn", "+15550100001"], check=True, capture_output=True, timeout=60)
    return tmp_path / "state"
