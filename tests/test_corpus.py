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
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]

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


SETUPS: dict[str, Callable[[Path, Path], None]] = {
    "huge_sparse_csr": _huge_sparse_csr,
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
