"""scripts/check-docs: which lines of a doc count as commands, and that a broken documented command fails the
check naming its doc and line. Needs the host build (.build/debug/handset-emu, handset-fw)."""
import importlib.machinery
import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check-docs"
EMU = ROOT / ".build" / "debug" / "handset-emu"


def load_checker():
    loader = importlib.machinery.SourceFileLoader("check_docs", str(CHECKER))
    spec = importlib.util.spec_from_loader("check_docs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def check(doc):
    return subprocess.run([sys.executable, str(CHECKER), str(doc)], capture_output=True, text=True, timeout=300)


def test_what_counts_as_a_command():
    cd = load_checker()
    doc = "\n".join([
        "Intro text:",                                  # 1
        "",                                             # 2
        "    tool one --flag \\",                       # 3: continues on the next line
        "        --other x     # a comment",            # 4
        "    # only a comment",                         # 5
        "",                                             # 6
        "```text",                                      # 7: data, not run
        "rule  0000000005  ok",                         # 8
        "```",                                          # 9
        "```sh",                                        # 10
        "$ tool two",                                   # 11: the prompt is dropped
        "```",                                          # 12
        "* a list item",                                # 13
        "    continued, not code",                      # 14: no blank line before it
        "",                                             # 15
        "| what | command |",                           # 16
        "| --- | --- |",                                # 17
        "| x | `tool three` and `tool four` |",         # 18
    ])
    assert cd.shown_commands("t.md", doc) == [
        (3, "tool one --flag  --other x     # a comment"),
        (11, "tool two"),
        (18, "tool three"),
        (18, "tool four"),
    ]
    assert cd.plan("tool x|y ...   # illustrative: a synopsis")[0] is None
    assert cd.plan("handset-emu modem --link m   # until Ctrl-C")[0] == "serve: handset-emu modem --link m"
    assert cd.plan("scripts/fuzz --runs 10000000 FuzzSMSPDU")[0] == "scripts/fuzz --runs 2000 FuzzSMSPDU"


@pytest.mark.skipif(not EMU.exists(), reason="needs the host build")
def test_the_firmware_doc_passes_as_written(tmp_path):
    copy = tmp_path / "firmware.md"
    copy.write_text((ROOT / "docs" / "firmware.md").read_text())
    r = check(copy)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok   {copy}:" in r.stdout and "handset-fw selftest" in r.stdout


@pytest.mark.skipif(not EMU.exists(), reason="needs the host build")
def test_a_renamed_flag_fails_naming_the_doc_line(tmp_path):
    # The README's modem line as written, then with --profile renamed: the checker must fail on that line.
    readme = (ROOT / "README.md").read_text().split("\n")
    index = next(i for i, l in enumerate(readme) if l.lstrip().startswith("handset-emu modem --profile"))
    broken = readme[:]
    broken[index] = broken[index].replace("--profile", "--modem-profile")
    copy = tmp_path / "README.md"
    copy.write_text("\n".join(broken))
    r = subprocess.run([sys.executable, str(CHECKER), "--only-line", str(index + 1), str(copy)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"FAIL {copy}:{index + 1}: handset-emu modem --modem-profile" in r.stdout, r.stdout
    assert "Unknown option '--modem-profile'" in r.stdout, r.stdout

    copy.write_text("\n".join(readme))
    r = subprocess.run([sys.executable, str(CHECKER), "--only-line", str(index + 1), str(copy)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not EMU.exists(), reason="needs the host build")
def test_a_renamed_subcommand_fails_naming_the_doc_line(tmp_path):
    text = (ROOT / "docs" / "firmware.md").read_text().replace("    handset-fw selftest ", "    handset-fw self-test ", 1)
    copy = tmp_path / "firmware.md"
    copy.write_text(text)
    line = text.split("\n").index(next(l for l in text.split("\n") if "handset-fw self-test" in l)) + 1
    r = check(copy)
    assert r.returncode == 1
    assert f"FAIL {copy}:{line}: handset-fw self-test" in r.stdout, r.stdout
    assert "1 failed" in r.stdout
