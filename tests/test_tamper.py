"""Someone with write access to privca.db edits it with sqlite3 behind privca's back: ``privca verify`` names each
change (one case per state column an attacker would want), and an untouched store, or one changed only through
privca, verifies clean (the negative controls)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import PASSPHRASE, build_csr, privca_subprocess

ENV = {"PRIVCA_PASSPHRASE": PASSPHRASE}


def _run(*args: str | Path) -> str:
    done = privca_subprocess(*args, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def _scenario(_template_store: Path, tmp_path_factory: pytest.TempPathFactory, rsa2048_key: Any) -> Path:
    """A store that lived a little, made once: three certificates (one revoked, one on hold), two CRLs of the
    issuing CA (the first one's row kept aside in ``older-crl.json``), a challenge password."""
    work = tmp_path_factory.mktemp("tamper")
    store = work / "store"
    shutil.copytree(_template_store, store)
    csrs = []
    for index in range(3):
        path = work / f"t{index}.csr"
        csr = build_csr(rsa2048_key, cn=f"t{index}.example.com", sans=[f"t{index}.example.com"])
        path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        csrs.append(path)
    issued = json.loads(_run("issue", *csrs, "--out", work / "out", "--store", store, "--json"))["certificates"]
    _run("revoke", issued[0]["serial"], "--reason", "keyCompromise", "--store", store)
    _run("revoke", issued[1]["serial"], "--reason", "certificateHold", "--store", store)
    _run("crl", "--store", store)
    conn = sqlite3.connect(store / "privca.db")
    try:
        older = conn.execute("SELECT * FROM crls WHERE ca_id = 2").fetchone()
    finally:
        conn.close()  # (``with`` would only commit: an open connection keeps a WAL file that copies then race)
    (work / "older-crl.json").write_text(json.dumps([value.hex() if isinstance(value, bytes) else value
                                                     for value in older]))
    _run("crl", "--store", store)
    _run("enroll", "challenge", "--profile", "cube", "--names", "cube1.example.com", "--store", store)
    (work / "serials.json").write_text(json.dumps([item["serial"] for item in issued]))
    return work


@pytest.fixture
def scene(_scenario: Path, tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(_scenario, tmp_path / "scene")
    work = tmp_path / "scene"
    serials = json.loads((work / "serials.json").read_text())
    return {"store": work / "store", "serials": serials, "older_crl": json.loads((work / "older-crl.json").read_text())}


def verify(store: Path) -> tuple[int, dict[str, Any]]:
    done = privca_subprocess("verify", "--store", store, "--json", "--skip", "files", env=ENV)
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def problems(report: dict[str, Any]) -> list[str]:
    return [f"{f['check']}: {f['subject']}: {f['problem']}" for f in report["findings"]]


def sql(store: Path, statement: str, *params: Any) -> None:
    conn = sqlite3.connect(store / "privca.db", isolation_level=None)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


# (case, SQL with {0} {1} {2} for the three serials as the ledger keeps them, what a finding must say)
ROW_ATTACKS = [
    ("un-revoke", "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL "
     "WHERE serial = '{0}'", "certificate {s0}: revocation_reason, revoked_at, status changed since event #"),
    ("release a hold", "UPDATE certificates SET status = 'valid' WHERE serial = '{1}'",
     "certificate {s1}: status changed since event #"),
    ("revoke a valid certificate", "UPDATE certificates SET status = 'revoked', revoked_at = '2020-01-01T00:00:00Z', "
     "revocation_reason = 'keyCompromise' WHERE serial = '{2}'",
     "certificate {s2}: revocation_reason, revoked_at, status changed since event #"),
    ("hold a valid certificate", "UPDATE certificates SET status = 'hold' WHERE serial = '{2}'",
     "certificate {s2}: status changed since event #"),
    ("backdate a revocation", "UPDATE certificates SET revoked_at = '2000-01-01T00:00:00Z' WHERE serial = '{0}'",
     "certificate {s0}: revoked_at changed since event #"),
    ("change the reason", "UPDATE certificates SET revocation_reason = 'superseded' WHERE serial = '{0}'",
     "certificate {s0}: revocation_reason changed since event #"),
    ("edit the profile", "UPDATE certificates SET profile = 'cucm-tomcat' WHERE serial = '{2}'",
     "certificate {s2}: profile changed since event #"),
    ("edit the SANs", "UPDATE certificates SET sans = '[\"evil.example.com\"]' WHERE serial = '{2}'",
     "certificate {s2}: sans changed since event #"),
    ("edit the EKU", "UPDATE certificates SET eku = '[\"serverAuth\",\"clientAuth\",\"codeSigning\"]' "
     "WHERE serial = '{2}'", "certificate {s2}: eku changed since event #"),
    ("edit a file path", "UPDATE certificates SET cert_path = '/tmp/elsewhere.pem' WHERE serial = '{2}'",
     "certificate {s2}: cert_path changed since event #"),
    ("point the CRL URL elsewhere", "UPDATE cas SET crl_url = 'http://evil.example.com/x.crl' WHERE name = 'issuing-1'",
     "CA issuing-1: crl_url changed since event #"),
    ("point the OCSP URL elsewhere", "UPDATE cas SET ocsp_url = 'http://evil.example.com/ocsp' "
     "WHERE name = 'issuing-1'", "CA issuing-1: ocsp_url changed since event #"),
    ("retire a CA", "UPDATE cas SET status = 'retired' WHERE name = 'issuing-1'",
     "CA issuing-1: status changed since event #"),
    ("raise the CRL number", "UPDATE cas SET crl_number = crl_number + 100 WHERE name = 'issuing-1'",
     "CA issuing-1: crl_number changed since event #"),
    ("raise the CRL row's number", "UPDATE crls SET crl_number = crl_number + 100 WHERE ca_id = 2",
     "the CRL of CA issuing-1: crl_number changed since event #"),
    ("delete a CRL row", "DELETE FROM crls WHERE ca_id = 2",
     "the CRL of CA issuing-1: recorded by event #"),
    ("add a certificate row", "INSERT INTO certificates (serial, issuer_id, profile, subject, sans, eku, key_type, "
     "key_size, not_before, not_after, status, fingerprint_sha256, issued_by, issued_at, pem) SELECT 'abcdef', "
     "issuer_id, profile, subject, sans, eku, key_type, key_size, not_before, not_after, status, fingerprint_sha256, "
     "issued_by, issued_at, pem FROM certificates WHERE serial = '{2}'",
     "certificate abcdef: no event records this row"),
    ("reuse a challenge", "UPDATE enroll_challenges SET used_at = NULL, expires_at = '2999-01-01T00:00:00Z'",
     "enrollment challenge #1: expires_at changed since event #"),
]


@pytest.mark.parametrize(("statement", "expected"), [case[1:] for case in ROW_ATTACKS],
                         ids=[case[0] for case in ROW_ATTACKS])
def test_an_edited_row_is_named(scene: dict[str, Any], statement: str, expected: str) -> None:
    store, serials = scene["store"], scene["serials"]
    stored = [serial.lstrip("0") for serial in serials]
    sql(store, statement.format(*stored))
    code, report = verify(store)
    assert code == 13
    wanted = "rows: " + expected.format(s0=serials[0], s1=serials[1], s2=serials[2])
    assert any(problem.startswith(wanted) for problem in problems(report)), problems(report)


def test_an_older_crl_row_put_back_is_named(scene: dict[str, Any]) -> None:
    """The CRL row replaced by the one before it (a CRL that still lists a certificate as good): the columns
    that differ between the two CRLs are named (the times too, when the two were not made in the same second)."""
    older = [bytes.fromhex(value) if index == 6 else value for index, value in enumerate(scene["older_crl"])]
    sql(scene["store"], "INSERT OR REPLACE INTO crls VALUES (?, ?, ?, ?, ?, ?, ?)", *older)
    code, report = verify(scene["store"])
    assert code == 13
    [finding] = [p for p in problems(report) if p.startswith("rows: ")]
    assert finding.startswith("rows: the CRL of CA issuing-1: crl_number, der, ") and "sha256" in finding


def test_the_untouched_store_verifies_clean(scene: dict[str, Any]) -> None:
    """Negative control: the store as privca left it (revocations, holds, two CRLs, a challenge) is whole."""
    code, report = verify(scene["store"])
    assert code == 0, problems(report)
    assert report["checked"]["rows"] >= 3 + 2 + 2 + 1


def test_changes_made_through_privca_verify_clean(scene: dict[str, Any]) -> None:
    """Negative control: a legitimate revoke, release and CRL after the scenario leave a store that verifies."""
    store, serials = scene["store"], scene["serials"]
    _run("unhold", serials[1], "--store", store)
    _run("revoke", serials[2], "--reason", "superseded", "--store", store)
    _run("crl", "--store", store)
    _run("ca", "set-url", "--ocsp-url", "http://ocsp2.example.test/", "--store", store)
    code, report = verify(store)
    assert code == 0, problems(report)
