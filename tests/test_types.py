"""The library is fully typed (pyproject's [tool.mypy]: strict); mypy keeps it so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_type_errors(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "privca"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_would_catch_a_mistake(tmp_path: Path) -> None:
    """Negative control: the same configuration rejects an untyped function and a wrong argument type."""
    bad = tmp_path / "bad.py"
    bad.write_text("def untyped(x):\n    return x\n\n\ndef typed(n: int) -> int:\n    return n\n\n\ntyped('one')\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                             "--cache-dir", str(tmp_path / "cache"), str(bad)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode != 0 and "no-untyped-def" in result.stdout and "arg-type" in result.stdout
