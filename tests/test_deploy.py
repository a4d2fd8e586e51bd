"""The shipped systemd units pass `systemd-analyze verify`, the tool systemd itself uses to check unit files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import run_tool

UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
INSTALLED_AT = "/opt/privca/bin/privca"


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing; scripts/test installs it (apt-get install systemd)")
    return found


def as_installed(tmp_path: Path) -> list[Path]:
    """The units, pointing at this environment's privca instead of the documented /opt/privca (verify checks that
    every ExecStart= program exists and is executable)."""
    privca = Path(sys.executable).with_name("privca")
    assert privca.exists(), privca
    copies = []
    for unit in sorted(UNITS.iterdir()):
        text = unit.read_text()
        if unit.suffix == ".service":
            assert INSTALLED_AT in text, unit.name
        (tmp_path / unit.name).write_text(text.replace(INSTALLED_AT, str(privca)))
        copies.append(tmp_path / unit.name)
    return copies


def test_every_unit_verifies_cleanly(tmp_path: Path) -> None:
    units = as_installed(tmp_path)
    names = {unit.name for unit in units}
    for job in ("serve", "crl", "publish", "backup", "notify"):
        assert f"privca-{job}.service" in names
        assert job == "serve" or f"privca-{job}.timer" in names  # every scheduled job has its timer
    result = run_tool(analyze(), "verify", "--man=no", *units)
    assert result.returncode == 0 and result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr


def test_secrets_never_go_on_the_command_line() -> None:
    for unit in UNITS.glob("*.service"):
        text = unit.read_text()
        assert "PRIVCA_PASSPHRASE" not in text and "--passphrase " not in text, unit.name
        if "--passphrase-file" in text:
            assert "LoadCredential=passphrase:" in text and "${CREDENTIALS_DIRECTORY}/passphrase" in text


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """Negative control: a misspelt directive and a missing program are reported."""
    units = as_installed(tmp_path)
    serve = next(unit for unit in units if unit.name == "privca-serve.service")
    serve.write_text(serve.read_text().replace("ExecStart=", "ExecStrat=", 1)
                     .replace("[Service]\n", "[Service]\nExecStart=/no/such/privca\n"))
    result = run_tool(analyze(), "verify", "--man=no", serve)
    assert "Unknown key" in result.stderr and "ExecStrat" in result.stderr
    assert result.returncode != 0 and "/no/such/privca" in result.stderr
