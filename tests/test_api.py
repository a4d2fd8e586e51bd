"""The public API: every command is a typed function in ``privca``; secrets as str or bytes; the example of
docs/library.md runs; and a user's script type-checks with mypy --strict against the installed wheel."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, PASSPHRASE, run_tool

import privca
from privca.errors import KeyMaterialError

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_DOC = ROOT / "docs" / "library.md"
# One function per command of the command line (issue 11 lists them).
OPERATIONS = ("init_ca", "issue", "renew", "renew_expiring", "revoke", "unhold", "crl", "crl_status", "publish",
              "rotate_intermediate", "rotate_root", "plan", "audit", "check_certificate", "export",
              "list_certificates", "show", "verify", "backup", "restore", "service_app", "set_urls")


def library_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", LIBRARY_DOC.read_text(), re.S)
    assert len(blocks) == 1
    return str(blocks[0])


def test_every_operation_is_a_typed_function_in_privca() -> None:
    from privca import api

    assert set(OPERATIONS) <= set(privca.__all__)
    from privca import errors

    assert set(privca.__all__) - set(vars(errors)) - {"__version__"} == set(api.__all__)
    for name in privca.__all__:
        assert getattr(privca, name) is not None, name
    for name in OPERATIONS:
        function = getattr(privca, name)
        signature = inspect.signature(function)
        untyped = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not untyped and signature.return_annotation is not inspect.Signature.empty, name
    # Negative control: a name that is not part of the API still raises AttributeError.
    with pytest.raises(AttributeError):
        privca.sign_and_record  # noqa: B018


def test_import_privca_stays_cheap() -> None:
    code = "import sys, privca; print(' '.join(sorted(sys.modules)))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "cryptography" not in modules and "privca.api" not in modules
    # Negative control: the first use of an API name loads the library.
    code = "import sys, privca; privca.issue; print(' '.join(sorted(sys.modules)))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "cryptography" in modules and "privca.api" in modules


@pytest.mark.parametrize("kind", ["str", "bytes", "Passphrase", "prompt"])
def test_secrets_as_str_or_bytes(store: Any, make_csr: Any, tmp_path: Path, kind: str) -> None:
    secret: Any = {"str": PASSPHRASE, "bytes": PASSPHRASE.encode(), "Passphrase": privca.Passphrase(PASSPHRASE.encode()),
                   "prompt": lambda: PASSPHRASE}[kind]
    records = privca.issue(store, [make_csr("expc.csr")], secret, now=NOW, out_dir=tmp_path / "out")
    assert records and (tmp_path / "out" / "expc.pem").exists()
    assert privca.verify(store, passphrase=secret).ok


@pytest.mark.parametrize("wrong", ["not the passphrase", b"not the passphrase"])
def test_a_wrong_secret_is_refused(store: Any, make_csr: Any, tmp_path: Path, wrong: str | bytes) -> None:
    with pytest.raises(KeyMaterialError):
        privca.issue(store, [make_csr("expc.csr")], wrong, now=NOW, out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "expc.pem").exists()


def test_library_doc_example_runs(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "expc.csr", tmp_path / "expc.csr")
    (tmp_path / "ca-passphrase.txt").write_text(PASSPHRASE + "\n")
    (tmp_path / "example.py").write_text(library_example())
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("pass ")  # check's verdict on the new certificate
    cert, chain = tmp_path / "certs" / "expc.pem", tmp_path / "certs" / "expc.chain.pem"
    for purpose in ("sslserver", "sslclient"):  # a real peer agrees with check
        result = run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", chain, cert)
        assert result.returncode == 0, result.stdout + result.stderr
    crl = next((tmp_path / "crl").glob("*issuing*.crl.pem"))
    revoked = run_tool("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl, cert)
    assert revoked.returncode != 0 and "revoked" in revoked.stdout + revoked.stderr
    assert (tmp_path / "store-backup.privca").stat().st_size > 0


# --- the installed wheel under mypy --strict ---------------------------------------------------------------------

WRONG_TYPE = """
from datetime import datetime, timezone
from pathlib import Path

import privca

store = privca.Store("store")
privca.issue(store, "expc.csr", "passphrase", now=datetime.now(timezone.utc))  # a str, not a list of paths
"""


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next((work / "dist").glob("privca-*.whl"))
    assert "privca/py.typed" in zipfile.ZipFile(wheel).namelist()
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    return venv


def _mypy_strict(venv: Path, script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on ``script`` as a user runs it: privca found only in the fresh venv, through py.typed."""
    folder.mkdir()
    (folder / "user.py").write_text(script)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable",
                           str(venv / "bin" / "python"), "--cache-dir", str(folder / ".cache"), "user.py"],
                          cwd=folder, capture_output=True, text=True, timeout=600)


def test_user_script_type_checks_against_the_installed_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    result = _mypy_strict(wheel_venv, library_example(), tmp_path / "good")
    assert result.returncode == 0, result.stdout + result.stderr
    # Negative control: a wrong argument type is caught, with privca's own signature.
    result = _mypy_strict(wheel_venv, WRONG_TYPE, tmp_path / "bad")
    assert result.returncode == 1 and 'Argument 2 to "issue" has incompatible type "str"' in result.stdout, \
        result.stdout
