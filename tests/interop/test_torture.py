"""`handset-emu torture`: a bounded fault campaign holds every invariant, and every invariant checker can fail.

The campaign runs the real firmware process against the simulator with a fixed seed; its table is parsed here. The
self-check feeds each checker the fault it exists to catch (a reused nonce, a replay accepted, a clear-text payload,
a lost acknowledged key, a login that never completes, SMS storage over its bound) and must see exactly those
violations. A partial-SMS campaign shows the firmware deletes the parts of messages that never complete.
"""
import os
import re
import subprocess

from modem_sim import HANDSET_EMU

INVARIANTS = [
    "no (key, nonce) pair reused on the wire",
    "no replayed packet accepted",
    "no acknowledged key-delegation message lost",
    "the device can always log in again",
    "no protected flow sent in clear",
    "a replay flood is answered at most once",
    "module SMS storage stays bounded",
]


def table(out, names):
    """{name: [numbers...]} for each table row that starts with one of `names`."""
    rows = {}
    for line in out.splitlines():
        for n in names:
            if line.strip().startswith(n):
                rows[n] = [int(x) for x in re.findall(r"\s(\d+)(?=\s|$)", line[line.index(n) + len(n):])]
    return rows


def run(*args, timeout):
    assert os.path.exists(HANDSET_EMU), "handset-emu not built at %s" % HANDSET_EMU
    return subprocess.run([HANDSET_EMU, "torture", *args], capture_output=True, text=True, timeout=timeout)


def test_bounded_campaign_holds_every_invariant():
    r = run("--seed", "7", "--iterations", "15", "--login-bound", "30", timeout=85)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "result: PASS: every invariant held over 15 iterations" in r.stdout
    rows = table(r.stdout, INVARIANTS)
    assert set(rows) == set(INVARIANTS), r.stdout
    drawn = table(r.stdout, ["one captured uplink replayed 100,000 times"])["one captured uplink replayed 100,000 times"][0]
    for name, (checks, violations) in rows.items():
        assert violations == 0, name
        if name != "a replay flood is answered at most once" or drawn:
            assert checks > 0, "%s was never checked" % name
    # Traffic really flowed: thousands of nonces are not needed, but some ESP and key-delegation messages are.
    assert rows["no (key, nonce) pair reused on the wire"][0] >= 10
    faults = table(r.stdout, ["replayed ESP packets injected"])
    assert faults["replayed ESP packets injected"][0] > 0
    injected = [int(m) for m in re.findall(r"^  (?:modem|garbage|dropped|SMS|socket|kill)[^\n]*?\s(\d+)$", r.stdout, re.M)]
    assert sum(injected) >= 10, r.stdout  # most iterations injected their fault
    assert re.search(r"time: [\d.]+ s in all, [\d.]+ s setup, [\d.]+ s per iteration", r.stdout)


def test_lockout_faults_leave_the_device_able_to_log_in():
    # docs/key-delegation.md §3: a flood of one captured uplink at the gateway's UDP port, and 100,000 lost
    # downlinks; after each the firmware is power-cut and must log in again and get a new SA.
    r = run("--seed", "5", "--iterations", "2", "--only", "replay-flood", "--only", "downlink-blackout",
            "--login-bound", "30", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = table(r.stdout, INVARIANTS)
    for name, (checks, violations) in rows.items():
        assert violations == 0, name
    assert rows["a replay flood is answered at most once"][0] >= 1 or "100,000 downlinks lost (handset offline)" in r.stdout
    assert rows["the device can always log in again"][0] >= 3  # the start, then one login per fault
    handled, lost = map(int, re.search(r"lockout faults: (\d+) replayed uplink copies handled by the gateway, (\d+) downlinks lost", r.stdout).groups())
    assert handled + lost > 0


def test_partial_sms_forever_leaves_storage_bounded():
    # Every iteration sends 24 concatenated messages of which only the first part ever arrives: more than the
    # firmware's 4 reassembly slots, so evicted parts must be deleted from the module or storage fills.
    r = run("--seed", "5", "--iterations", "3", "--only", "partial-sms", timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "result: PASS: every invariant held over 3 iterations" in r.stdout
    rows = table(r.stdout, ["module SMS storage stays bounded", "partial concatenated SMS (first part only)",
                            "secret over SMS (3 parts each way)"])
    checks, violations = rows["module SMS storage stays bounded"]
    assert violations == 0 and checks >= 9  # after each burst, after the secret, at the end of each iteration
    assert rows["partial concatenated SMS (first part only)"][0] == 3 * 24
    assert rows["secret over SMS (3 parts each way)"][0] == 3  # SMS kept arriving: every secret came back


def test_same_seed_draws_the_same_faults():
    a = run("--seed", "3", "--iterations", "3", "--verbose", timeout=60)
    b = run("--seed", "3", "--iterations", "3", "--verbose", timeout=60)
    assert a.returncode == 0 and b.returncode == 0, a.stdout + b.stdout
    drawn = lambda out: [re.sub(r" \(.*$", "", l.split(":")[0]) for l in out.splitlines() if l.startswith("  #")]
    assert drawn(a.stdout) == drawn(b.stdout) and len(drawn(a.stdout)) == 3


def test_every_checker_can_fail():
    r = run("--self-check", timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr  # violations found, as a failing campaign would exit
    assert "self-check: every checker reported exactly its violations" in r.stdout
    rows = table(r.stdout, INVARIANTS)
    assert set(rows) == set(INVARIANTS)
    for name, (checks, violations) in rows.items():
        assert violations >= 1, name
    assert r.stdout.count("VIOLATION (expected)") == 9


def test_help_names_faults_and_invariants():
    r = run("--help", timeout=10)
    assert r.returncode == 0
    for text in ["--seed", "--iterations", "kill -9 during key rotation", "SMS lost", "partial-sms"] + INVARIANTS:
        assert text in r.stdout, text
    assert "--self-check" not in r.stdout
