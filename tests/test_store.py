"""Which store a command uses: --store, PRIVCA_STORE, ./store when it holds a CA, then the one privca init recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import snapshot

INIT = ["init", "--root-cn", "Field Root", "--issuing-cn", "Field Issuing 1", "--key-type", "ec:secp256r1"]


def privca(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """privca as a user runs it: a process of its own in a folder of the user's choosing."""
    return subprocess.run([sys.executable, "-m", "privca", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A user who ran privca init in ~/pki: the store is recorded in the user's configuration."""
    folder = tmp_path / "pki"
    folder.mkdir()
    made = privca(*INIT, cwd=folder)
    assert made.returncode == 0, made.stderr
    assert "Recorded in" in made.stdout
    return folder


def test_a_command_from_another_folder_uses_the_recorded_store_and_says_so(home: Path, tmp_path: Path,
                                                                           make_csr: Any) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = privca("ca", "list", "--json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert [ca["subject"] for ca in json.loads(listed.stdout)["cas"]] == ["CN=Field Root", "CN=Field Issuing 1"]
    assert f"Store: {home / 'store'} (recorded by privca init)" in listed.stderr
    assert not (elsewhere / "store").exists()
    issued = privca("issue", make_csr("expc.csr"), "--out", elsewhere, cwd=elsewhere)
    assert issued.returncode == 0 and (elsewhere / "expc.pem").exists(), issued.stderr


def test_the_order_is_store_option_then_variable_then_here_then_recorded(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert privca("init", "--root-cn", "Other Root", "--issuing-cn", "Other Issuing 1", "--key-type", "ec:secp256r1",
                  "--second-root", cwd=other).returncode == 0

    def root_of(result: subprocess.CompletedProcess) -> str:
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["cas"][0]["subject"])

    here = privca("ca", "list", "--json", cwd=other)
    assert root_of(here) == "CN=Other Root" and f"Store: {other / 'store'} (./store)" in here.stderr
    assert root_of(privca("ca", "list", "--json", cwd=tmp_path)) == "CN=Field Root"  # recorded
    env = {"PRIVCA_STORE": str(other / "store")}
    via_env = privca("ca", "list", "--json", cwd=home, env=env)
    assert root_of(via_env) == "CN=Other Root" and "Store:" not in via_env.stderr  # named by the user
    given = privca("ca", "list", "--json", "--store", home / "store", cwd=other, env=env)
    assert root_of(given) == "CN=Field Root" and "Store:" not in given.stderr  # named on the command line


def test_with_no_store_anywhere_the_error_names_the_path_and_the_ways_to_point_at_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = privca("list", cwd=empty)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(empty / "store") in result.stderr and "--store DIR" in result.stderr
    assert "PRIVCA_STORE=DIR" in result.stderr


def test_a_second_root_needs_confirmation(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = snapshot(home, elsewhere)
    refused = privca(*INIT, cwd=elsewhere)
    assert refused.returncode != 0 and "second, unrelated root" in refused.stderr and "--second-root" in refused.stderr
    assert not (elsewhere / "store").exists() and snapshot(home, elsewhere) == before
    also_refused = privca(*INIT, "--store", elsewhere / "new", cwd=elsewhere)
    assert also_refused.returncode != 0 and not (elsewhere / "new").exists()
    # Negative control: confirmed, it is created, and the recorded store stays the first one.
    made = privca(*INIT, "--second-root", cwd=elsewhere)
    assert made.returncode == 0 and "second, unrelated root" in made.stderr, made.stderr
    assert (elsewhere / "store" / "privca.db").exists() and "Recorded in" not in made.stdout
    away = tmp_path / "away"
    away.mkdir()
    assert json.loads(privca("ca", "list", "--json", cwd=away).stdout)["cas"][0]["subject"] == "CN=Field Root"
