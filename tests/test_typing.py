"""privca type-checks under mypy --strict (with pyproject's settings), so a change that loses a type fails here
and not in a user's editor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", *targets], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_privca_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    done = _mypy("privca")
    assert done.returncode == 0 and "Success: no issues found" in done.stdout, done.stdout + done.stderr
    # The control: the same run finds a wrongly typed module.
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def f(x: int) -> str:\n    return x\n")
    failed = _mypy(str(wrong))
    assert failed.returncode == 1 and "Incompatible return value type" in failed.stdout, failed.stdout
