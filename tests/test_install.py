"""privca as a user installs it: `pip install .` into a fresh virtual environment, used from another folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PASSPHRASE, run_tool

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    # A clean environment with nothing but what privca's own metadata pulls in: a missing dependency shows here.
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    return venv


def test_installed_wheel_carries_the_profiles(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE}
    privca = installed / "bin" / "privca"
    listed = subprocess.run([privca, "profiles", "--json"], cwd=work, capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    for name in ("expressway-c", "expressway-server", "expressway-client", "cucm", "unity", "cms", "cube"):
        assert f'"name": "{name}"' in listed.stdout
    # The profiles come from the installed package, not from this checkout.
    where = subprocess.run([installed / "bin" / "python", "-c",
                            "import privca.issuance.profiles as p; print(p.shipped_profiles_dir())"],
                           cwd=work, capture_output=True, text=True)
    assert str(ROOT) not in where.stdout and "_profiles" in where.stdout


def test_init_issue_verify_from_another_folder(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE}
    env.pop("PRIVCA_STORE", None)
    privca = installed / "bin" / "privca"
    init = subprocess.run([privca, "init", "--root-cn", "Example UC Root CA", "--issuing-cn", "Example UC Issuing CA 1",
                           "--key-type", "ec:secp256r1"], cwd=work, capture_output=True, text=True, env=env)
    assert init.returncode == 0, init.stderr
    assert (work / "store" / "privca.db").exists()
    csr = ROOT / "examples" / "expc.csr"
    issued = subprocess.run([privca, "issue", csr, "--out", work / "certs"], cwd=work, capture_output=True, text=True,
                            env=env)
    assert issued.returncode == 0, issued.stderr
    chain, cert = work / "certs" / "expc.chain.pem", work / "certs" / "expc.pem"
    for purpose in ("sslserver", "sslclient"):
        result = run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", chain, cert)
        assert result.returncode == 0, result.stdout + result.stderr
