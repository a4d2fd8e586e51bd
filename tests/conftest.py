"""Shared fixtures: a pinned clock, a ready CA store (made once, copied per test), a CSR factory, and a CLI runner.

Tests check results with real peers (openssl, Python ssl, pyca's verifier, keytool, pkilint) wherever a peer
exists, and put a negative control next to each positive test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSPHRASE = "correct horse battery staple"
# The library always takes `now`; tests pin it for the session. It is a day in the past (on the hour) so that
# certificates issued with it are valid for the real-clock peers (openssl, ssl) that the tests use.
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)

REQUIRED_TOOLS = ("openssl", "faketime")


def pytest_configure(config: Any) -> None:
    # privca init records the store in the user's configuration: never in the real one. Each test has its own
    # (the autouse fixture below); this covers the session and module fixtures, which run outside any test.
    import tempfile

    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="privca-test-config-")
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="privca-test-cache-")
    # A missing peer tool must fail the run, never skip silently (CI installs them).
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise pytest.UsageError(f"required tools missing: {', '.join(missing)}; run scripts/test to install them")


@pytest.fixture(autouse=True)
def _passphrase_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRIVCA_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("PRIVCA_STORE", raising=False)
    # Each test has its own user configuration (where privca init records the store), never the real one.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    # Its own cache too (where privca remembers checked seals), beside tmp_path: tests snapshot tmp_path.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path.parent / f"{tmp_path.name}-user-cache"))


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def rsa2048_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the whole session: RSA key generation is the slow part, copying is not."""
    from privca.authority.ca import init_ca
    from privca.keys.material import Passphrase
    from privca.ledger.store import Store

    path = tmp_path_factory.mktemp("template") / "store"
    store = Store(path)
    init_ca(store, Passphrase(PASSPHRASE.encode()), root_cn="Test UC Root CA", issuing_cn="Test UC Issuing CA 1",
            org="Example Ltd", key_type="rsa:3072", crl_url="http://pki.example.test/crl",
            ocsp_url="http://pki.example.test/ocsp", now=NOW)
    store.close()
    return path


@pytest.fixture
def store_path(_template_store: Path, tmp_path: Path) -> Path:
    """A private copy of the session CA store."""
    path = tmp_path / "store"
    shutil.copytree(_template_store, path)
    return path


@pytest.fixture
def store(store_path: Path) -> Any:
    from privca.ledger.store import Store

    opened = Store(store_path)
    yield opened
    opened.close()


@pytest.fixture
def passphrase() -> Any:
    from privca.keys.material import Passphrase

    return Passphrase(PASSPHRASE.encode())


def build_csr(
    key: Any,
    cn: str | None = "expc1.example.com",
    sans: list[str] | None = None,
    *,
    eku: list[Any] | None = None,
    ca: bool = False,
    ip_sans: list[str] | None = None,
    extra_subject: list[x509.NameAttribute] | None = None,
) -> x509.CertificateSigningRequest:
    """An Expressway-style CSR: CN = node FQDN, SANs, and a request for serverAuth + clientAuth."""
    import ipaddress

    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Ltd")] + (extra_subject or [])
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (sans if sans is not None else
                                                                 ["expc1.example.com", "expc.example.com",
                                                                  "chatnode1.example.com"])]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_sans or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    wanted = eku if eku is not None else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    if wanted:
        builder = builder.add_extension(x509.ExtendedKeyUsage(wanted), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


@pytest.fixture
def make_csr(tmp_path: Path, rsa2048_key: rsa.RSAPrivateKey) -> Any:
    """Write a CSR file; returns its path. ``key`` defaults to a session RSA-2048 key."""
    counter = {"n": 0}

    def factory(name: str | None = None, *, key: Any = None, der: bool = False, folder: Path | None = None,
                **kwargs: Any) -> Path:
        counter["n"] += 1
        csr = build_csr(key or rsa2048_key, **kwargs)
        target = (folder or tmp_path / "csrs")
        target.mkdir(parents=True, exist_ok=True)
        path = target / (name or f"node{counter['n']}.csr")
        encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
        path.write_bytes(csr.public_bytes(encoding))
        return path

    return factory


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run privca in-process, as a user would type it; returns exit code, stdout and stderr."""
    from privca.cli import main

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_tool(*args: str | Path, check: bool = False, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run an external tool (openssl, keytool, ...) and capture its output as text."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=input is None, input=input,
                          check=check, timeout=timeout)


def shown_serial(number: int) -> str:
    """A serial as OpenSSL shows it (whole bytes, here in lowercase): what privca prints."""
    digits = format(number, "x")
    return digits.zfill(len(digits) + len(digits) % 2)


def venv_tool(name: str) -> str:
    """A console script installed beside this Python (e.g. pkilint's lint_pkix_cert), even when PATH lacks it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed; it is part of the test extra"
    return found


def privca_subprocess(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """privca as a separate process (for tests that need a real process: tracebacks, signals, concurrency)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "privca", *[str(a) for a in args]], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)


def snapshot(*folders: Path) -> dict[str, Any]:
    """Every file under ``folders`` with its bytes and mode, and each ledger's logical content: to prove that a
    failed command changed nothing. (The ledger file's bytes may change on a WAL checkpoint; its rows may not.)"""
    import sqlite3

    state: dict[str, Any] = {}
    for folder in folders:
        if not folder.exists():
            continue
        state[str(folder)] = "exists"
        for path in sorted(folder.rglob("*")):
            if path.name.startswith("privca.db"):
                if path.name == "privca.db":
                    conn = sqlite3.connect(path)
                    try:
                        state[str(path)] = list(conn.iterdump())
                    except sqlite3.DatabaseError:  # not a database (a damaged or hostile ledger): its bytes
                        state[str(path)] = path.read_bytes()
                    finally:
                        conn.close()
            elif path.is_file():
                state[str(path)] = (path.read_bytes(), path.stat().st_mode)
            else:
                state[str(path)] = "dir"
    return state


def ledger_events(store_path: Path, action: str | None = None) -> list[dict[str, Any]]:
    """Every event in a store's ledger (action, serial and its details), oldest first; only ``action``'s if given."""
    import json
    import sqlite3

    with sqlite3.connect(store_path / "privca.db") as conn:
        rows = conn.execute("SELECT action, serial, details FROM events ORDER BY id").fetchall()
    return [{"action": a, "serial": s, **json.loads(d)} for a, s, d in rows if action is None or a == action]


def certificate_row(store_path: Path, serial: str) -> dict[str, Any]:
    """A certificate's ledger row as it is on disk, column by column."""
    import sqlite3

    with sqlite3.connect(store_path / "privca.db") as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM certificates WHERE serial = ?", (serial,)).fetchone())


def ledger_counts(store_path: Path) -> tuple[int, int]:
    """(certificates, events) rows in a store's ledger."""
    import sqlite3

    conn = sqlite3.connect(store_path / "privca.db")
    try:
        return (conn.execute("SELECT count(*) FROM certificates").fetchone()[0],
                conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()
