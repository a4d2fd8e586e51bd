"""The hostile input corpus (tests/corpus/cases.toml): each case gives one `Error:` line, its exit code, no
traceback, and changes nothing. Every case runs in-process; those marked `subprocess` also run as a real process
(a traceback or a stray warning only shows there)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import snapshot

CORPUS = Path(__file__).parent / "corpus"
_TABLES = tomllib.loads((CORPUS / "cases.toml").read_text())
CASES: list[dict[str, Any]] = _TABLES["case"]
AUDIT_CASES: list[dict[str, Any]] = _TABLES["audit"]

# (command, input) templates: a case names one and an input file under tests/corpus/.
COMMANDS: dict[str, list[str]] = {
    "issue": ["issue", "{input}", "--out", "{out}"],
    "profiles-check": ["profiles", "check", "{input}"],
    "restore": ["restore", "{input}", "--store", "{tmp}/restored-store"],
}


def _case_id(case: dict[str, Any]) -> str:
    return case.get("id") or f"{case['command']}:{case['input']}"


# --- setups: plant the hostile thing a case needs -------------------------------------------------------------

def _huge_sparse_csr(tmp: Path, store: Path) -> None:
    # Outside the snapshot folder: the snapshot itself would read all of it.
    with open(tmp.parent / "huge.csr", "wb") as handle:
        handle.truncate(4 << 30)  # 4 GiB of holes: read in full, it would exhaust memory


def _csr_symlink_to_dev_zero(tmp: Path, store: Path) -> None:
    (tmp / "zero.csr").symlink_to("/dev/zero")


def _fifo_csr(tmp: Path, store: Path) -> None:
    os.mkfifo(tmp / "fifo.csr")  # opening it for reading would block forever


def _store_profiles_with_a_cycle(tmp: Path, store: Path) -> None:
    for name in ("cycle-a.toml", "cycle-b.toml", "self-extends.toml"):
        shutil.copy(CORPUS / "profile" / name, store / "profiles" / name)


def _store_profile_symlink_to_dev_zero(tmp: Path, store: Path) -> None:
    (store / "profiles" / "zero.toml").symlink_to("/dev/zero")


def _output_symlink(tmp: Path, store: Path) -> None:
    victim = tmp / "victim.txt"
    victim.write_text("must not be overwritten\n")
    (tmp / "out").mkdir()
    (tmp / "out" / "good.pem").symlink_to(victim)


def _output_dangling_symlink(tmp: Path, store: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "good.chain.pem").symlink_to(tmp / "nowhere" / "x.pem")


def _output_exists(tmp: Path, store: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "good.fullchain.pem").write_text("an earlier certificate\n")


def _a_file(tmp: Path, store: Path) -> None:
    (tmp / "a-file").write_text("not a folder\n")


def _garbage_ledger_store(tmp: Path, store: Path) -> None:
    garbage = tmp / "garbage-store"
    (garbage / "keys").mkdir(parents=True)
    (garbage / "privca.db").write_bytes(os.urandom(8192))


def _p12_password_file(tmp: Path, store: Path) -> None:
    (tmp / "pw").write_text("corpus-password\n")  # the right password: the round count is refused before it


def _control_chars_in_file_name(tmp: Path, store: Path) -> None:
    (tmp / "ctl\x1b[2J.pem").write_bytes(b"x")


def _hostile_pem_5mib(tmp: Path, store: Path) -> None:
    # Just under audit's 5 MiB file limit, every line a BEGIN without an END: quadratic for a back-referencing
    # regular expression (about an hour), one pass for privca's PEM scanner.
    line = b"-----BEGIN CERTIFICATE-----\n"
    (tmp / "begin-lines.pem").write_bytes(line * (5 * 1024 * 1024 // len(line)))


def _event_from_the_future(tmp: Path, store: Path) -> None:
    # A properly chained event from a clock that ran far ahead: this machine's clock is now "well behind".
    from datetime import datetime, timezone

    from privca.ledger import events
    from privca.ledger.db import Ledger

    ledger = Ledger(store / "privca.db")
    with ledger.write():
        events.record(ledger, datetime(2099, 1, 1, tzinfo=timezone.utc), "crl", {"ca": "issuing-1"})
    ledger.close()


def _shared_passphrase_file(tmp: Path, store: Path) -> None:
    from conftest import PASSPHRASE

    (tmp / "passphrase").write_text(PASSPHRASE + "\n")
    os.chmod(tmp / "passphrase", 0o644)  # the right passphrase, readable by every user of the machine


SETUPS: dict[str, Callable[[Path, Path], None]] = {
    "p12_password_file": _p12_password_file,
    "control_chars_in_file_name": _control_chars_in_file_name,
    "huge_sparse_csr": _huge_sparse_csr,
    "hostile_pem_5mib": _hostile_pem_5mib,
    "shared_passphrase_file": _shared_passphrase_file,
    "event_from_the_future": _event_from_the_future,
    "csr_symlink_to_dev_zero": _csr_symlink_to_dev_zero,
    "fifo_csr": _fifo_csr,
    "store_profiles_with_a_cycle": _store_profiles_with_a_cycle,
    "store_profile_symlink_to_dev_zero": _store_profile_symlink_to_dev_zero,
    "output_symlink": _output_symlink,
    "output_dangling_symlink": _output_dangling_symlink,
    "output_exists": _output_exists,
    "a_file": _a_file,
    "garbage_ledger_store": _garbage_ledger_store,
}


def _args(case: dict[str, Any], places: dict[str, str]) -> list[str]:
    template = COMMANDS[case["command"]] if "command" in case else case["args"]
    values = {**places, "input": str(CORPUS / case["input"]) if "input" in case else ""}
    return [part.format(**values) for part in template]


@pytest.fixture
def prepared(store_path: Path, tmp_path: Path, make_csr: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    work = tmp_path / "work"
    work.mkdir()
    good = make_csr("good.csr", folder=tmp_path / "input", cn="good.example.com", sans=["good.example.com"])
    monkeypatch.setenv("PRIVCA_STORE", str(store_path))
    monkeypatch.chdir(work)

    def prepare(case: dict[str, Any]) -> tuple[list[str], Callable[[], dict[str, Any]]]:
        if "setup" in case:
            SETUPS[case["setup"]](work, store_path)
        places = {"corpus": str(CORPUS), "tmp": str(work), "out": str(work / "out"), "store": str(store_path),
                  "good": str(good)}
        return _args(case, places), lambda: snapshot(store_path, work, good.parent)

    return prepare


def _check(case: dict[str, Any], code: int, stderr: str) -> None:
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert case["error"] in lines[0], lines[0]
    assert code == case["exit"], lines[0]


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({_case_id(case) for case in CASES}) == len(CASES)
    listed = {case["input"] for case in CASES if "input" in case}
    assert all((CORPUS / name).is_file() for name in listed)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_hostile_input_in_process(case: dict[str, Any], prepared: Any, cli: Any) -> None:
    args, state = prepared(case)
    before = state()
    result = cli(*args)
    _check(case, result.exit_code, result.stderr)
    assert state() == before


@pytest.mark.parametrize("case", [case for case in CASES if case.get("subprocess")], ids=_case_id)
def test_hostile_input_as_a_process(case: dict[str, Any], prepared: Any) -> None:
    args, state = prepared(case)
    before = state()
    result = subprocess.run([sys.executable, "-m", "privca", *args], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    _check(case, result.returncode, result.stderr)
    assert result.stdout == ""
    assert state() == before


def test_a_garbage_ledger_is_left_as_it_was(prepared: Any, cli: Any, tmp_path: Path) -> None:
    """The negative control for 'no state change': the same snapshot does see a change when there is one."""
    args, state = prepared({"args": ["issue", "{good}", "--out", "{out}"]})
    before = state()
    assert cli(*args).exit_code == 0
    after = state()
    assert after != before
    changed = set(after) ^ set(before)
    assert any(path.endswith("good.pem") for path in changed)
    conn = sqlite3.connect(Path(os.environ["PRIVCA_STORE"]) / "privca.db")
    assert conn.execute("SELECT count(*) FROM certificates").fetchone()[0] == 1
    conn.close()


@pytest.mark.parametrize("case", AUDIT_CASES, ids=lambda c: c.get("input") or c["target"].rpartition("/")[2])
def test_audit_reports_each_hostile_target_and_goes_on(case: dict[str, Any], prepared: Any, tmp_path: Path) -> None:
    """privca audit as a process: each target is reported (unreadable, with why, or read as a certificate), the
    good certificate beside it is still audited, and the exit code follows --fail-on; never a traceback."""
    import json

    args, state = prepared({"args": [case["target"]] if "target" in case else [str(CORPUS / case["input"])],
                            **({"setup": case["setup"]} if "setup" in case else {})})
    target = args[0]
    good = CORPUS / "cert" / "zero-serial.pem"  # read fine (a warning), so --fail-on critical passes on it
    before = state()
    for fail_on, expected in (("critical", 0), ("warning", 21), ("never", 0)):
        done = subprocess.run([sys.executable, "-m", "privca", "audit", target, str(good), "--json", "--fail-on",
                               fail_on], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert "Traceback" not in done.stderr and "Error:" not in done.stderr, done.stderr
        assert "\x1b" not in done.stderr + done.stdout  # no raw escape sequence reaches the terminal
        assert done.returncode == expected, (fail_on, done.stderr)
        report = json.loads(done.stdout)
        errors = {item["target"]: item["message"] for item in report["errors"]}
        located = {location for cert in report["certificates"] for location in cert["locations"]}
        assert str(good) in located
        if "message" in case:
            assert case["message"] in errors[target], errors
        else:
            assert errors == {} and target in located
    human = subprocess.run([sys.executable, "-m", "privca", "audit", target], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in human.stderr and "\x1b" not in human.stdout + human.stderr
    assert state() == before
