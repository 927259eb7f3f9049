"""Heap allocations of the embedded firmware over an emulator run, counted by wrapping malloc & co. at link time.

The firmware comes from `scripts/build-embedded aarch64 --count-allocs` (HANDSET_FIRMWARE overrides the path,
HANDSET_QEMU the emulator): on SIGTERM it prints "heap: N allocations during start-up, M after" and one
"heap: site ... from ...: K" line per call site after start-up (start-up ends when login completes).

Checked (BENCHMARKS.md, "Heap allocations over a scenario"): after start-up there are none at all, M == 0. Not per
packet, per AT line or per log line, and not per SA installed either: the shim keys AES-GCM inside the SA table's own
context pool instead of letting mbedtls_gcm_setkey calloc an AES context each time. The run must install SAs and carry
ESP packets, or the zero would prove nothing. power-cut is left out: it restarts the firmware, so the figures would
cover its last life only."""
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMU = os.environ.get("HANDSET_EMU", str(REPO / ".build/debug/handset-emu"))
FIRMWARE = os.environ.get("HANDSET_FIRMWARE", str(REPO / ".build-aarch64-count/release/handset-fw"))
QEMU = os.environ.get("HANDSET_QEMU", "qemu-aarch64")
SCENARIOS = ["login", "handset-initiated", "peer-initiated", "secret-sms", "sa-cache", "secure-fetch", "rekey"]


def addr2line():
    tool = "aarch64-linux-gnu-addr2line" if "aarch64" in QEMU else "arm-linux-gnueabihf-addr2line"
    return shutil.which(tool) or shutil.which("addr2line")


def test_no_heap_allocation_after_start_up():
    assert os.path.exists(FIRMWARE), f"{FIRMWARE} missing: run scripts/build-embedded aarch64 --count-allocs"
    args = [EMU, "run", "--firmware", FIRMWARE, "--qemu", QEMU, "--duration", "8"]
    for s in SCENARIOS:
        args += ["--scenario", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-2000:]
    m = re.search(r"^heap: (\d+) allocations during start-up, (\d+) after \((\d+) frees\)$", out, re.M)
    assert m, "no heap line: is this a --count-allocs build?\n" + out[-2000:]
    startup, after = int(m.group(1)), int(m.group(2))
    sas = int(re.search(r"^heap: (\d+) SAs installed$", out, re.M).group(1))
    packets = int(re.search(r"(\d+) packets, (\d+) SPIs", out).group(1))
    print(f"heap: {startup} during start-up, {after} after; {packets} ESP packets, {sas} SAs installed")
    assert startup > 0  # the counter is live (the wrap is in effect)
    assert packets >= 20 and sas >= 4, f"too little traffic to prove anything: {packets} packets, {sas} SAs"
    sites = re.findall(r"^heap: site \S+\+(0x[0-9a-f]+) from \S+\+(0x[0-9a-f]+): (\d+)$", out, re.M)
    names = []
    for _, caller, n in sites:
        name = subprocess.run([addr2line(), "-f", "-e", FIRMWARE, caller], capture_output=True, text=True).stdout.split()[0]
        names.append(f"{name} x{n}")
    assert after == 0, f"{after} allocations after start-up ({sas} SAs installed): " + ", ".join(names)
