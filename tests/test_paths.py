"""Folders privca creates for certificates and CRLs are never group- or world-writable, whatever the umask;
secrets come only from private files. (Refusals with their messages are cases in tests/corpus/cases.toml.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import PASSPHRASE


def _modes(top: Path) -> dict[str, int]:
    return {str(path.relative_to(top)): stat.S_IMODE(path.stat().st_mode) for path in [top, *top.rglob("*")]
            if path.is_dir()}


def _under_umask_000(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "privca", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=lambda: os.umask(0))


def test_output_folders_under_umask_000(store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    env = {**os.environ, "PRIVCA_STORE": str(store_path)}
    csr = make_csr("node.csr", cn="node.example.com", sans=["node.example.com"])
    done = _under_umask_000("issue", csr, "--out", tmp_path / "certs" / "a" / "b", env=env)
    assert done.returncode == 0, done.stderr
    crl = _under_umask_000("crl", "--out", tmp_path / "crl" / "x" / "y", env=env)
    assert crl.returncode == 0, crl.stderr
    made = {**_modes(tmp_path / "certs"), **{f"crl/{k}": v for k, v in _modes(tmp_path / "crl").items()}}
    assert len(made) == 6 and all(mode & 0o022 == 0 for mode in made.values()), made
    # The control: the same umask gives a world-writable folder to a plain mkdir of the parents.
    probe = subprocess.run([sys.executable, "-c", "import pathlib,sys; pathlib.Path(sys.argv[1]).mkdir(0o755, "
                            "parents=True); print(oct(pathlib.Path(sys.argv[1]).parent.stat().st_mode & 0o777))",
                            str(tmp_path / "probe" / "inner")], capture_output=True, text=True,
                           preexec_fn=lambda: os.umask(0))
    assert probe.stdout.strip() == "0o777"


def test_a_private_passphrase_file_is_used(cli: Any, store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    for mode, ok in ((0o640, False), (0o604, False), (0o600, True), (0o400, True)):
        os.chmod(secret, mode)
        csr = make_csr(f"n{mode:o}.csr", cn=f"n{mode:o}.example.com", sans=[f"n{mode:o}.example.com"])
        result = cli("issue", csr, "--out", tmp_path / "out", "--store", store_path, "--passphrase-file", secret)
        assert (result.exit_code == 0) is ok, (oct(mode), result.stderr)
        if not ok:
            assert f"(mode {mode:04o}); make it private: chmod 600" in result.stderr
