"""The certificates a batch issue produces, after the batch-speed work (cached profile extensions, one events
insert per batch): the same extensions in the same order for RSA and EC keys, RFC 5280 clean by pkilint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from conftest import run_tool

EXPECTED = [
    (ExtensionOID.SUBJECT_KEY_IDENTIFIER, False),
    (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, False),
    (ExtensionOID.BASIC_CONSTRAINTS, True),
    (ExtensionOID.KEY_USAGE, True),
    (ExtensionOID.EXTENDED_KEY_USAGE, False),
    (ExtensionOID.SUBJECT_ALTERNATIVE_NAME, False),
    (ExtensionOID.CRL_DISTRIBUTION_POINTS, False),
    (ExtensionOID.AUTHORITY_INFORMATION_ACCESS, False),
]


def test_batch_of_rsa_and_ec_leaves(store_path: Path, make_csr: Any, ec_key: Any, cli: Any, tmp_path: Path) -> None:
    csrs = [make_csr("rsa.csr", cn="rsa.example.com", sans=["rsa.example.com"]),
            make_csr("ec.csr", key=ec_key, cn="ec.example.com", sans=["ec.example.com"])]
    result = cli("issue", *csrs, "--out", tmp_path / "out", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)["certificates"]
    for record, encipherment in zip(records, (True, False), strict=True):
        cert = x509.load_pem_x509_certificate(Path(record["cert_path"]).read_bytes())
        assert [(ext.oid, ext.critical) for ext in cert.extensions] == EXPECTED
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.key_encipherment is encipherment  # keyEncipherment for RSA only
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())  # per certificate, not cached
        lint = run_tool("lint_pkix_cert", "lint", "-s", "WARNING", record["cert_path"])
        assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout
    # Negative control: the linter does object to a certificate that breaks RFC 5280 (a zero serial).
    bad = run_tool("lint_pkix_cert", "lint", "-s", "WARNING", Path(__file__).parent / "corpus" / "cert" / "zero-serial.pem")
    assert bad.returncode != 0 and "ERROR" in bad.stdout
    # The events of one batch are chained one after the other.
    conn = __import__("sqlite3").connect(store_path / "privca.db")
    rows = conn.execute("SELECT serial, prev_hash, hash FROM events WHERE action = 'issue' ORDER BY id").fetchall()
    conn.close()
    assert [row[0] for row in rows] == [r["serial"].lstrip("0") for r in records]
    assert rows[1][1] == rows[0][2]


@pytest.fixture(autouse=True)
def _venv_tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
