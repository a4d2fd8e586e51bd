"""A store made by the previous release opens, upgrades in place and passes ``privca verify``.

tests/data/previous-release/store was made with privca 0.1.0 as released (before the ledger kept records and one
migration record), with EC P-256 keys to keep it small:

    privca init --root-cn "Old Release Root CA" --issuing-cn "Old Release Issuing CA 1" --org "Example Ltd" \\
        --key-type ec:secp256r1 --crl-url http://pki.example.test/crl --ocsp-url http://pki.example.test/ocsp
    privca issue expc1.csr expc2.csr --out out
    privca revoke 3314e0ba8f73b1965f99b22a4f2f747ee03956a6 --reason keyCompromise
    privca crl
    privca rotate root
    privca rotate intermediate
    privca crl

Its ledger counted migrations twice (``PRAGMA user_version`` 4 and sqlite-utils' ``_sqlite_migrations``); now the
migrations table is the only record. The certificate files it names were in a folder that is not part of the
fixture: verify notes them as moved, which is not a problem.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tool

FIXTURE = Path(__file__).parent / "data" / "previous-release" / "store"
FIXTURE_PASSPHRASE = "fixture passphrase from the previous release"
REVOKED = "3314e0ba8f73b1965f99b22a4f2f747ee03956a6"
VALID = "3205fd5116af90ddea1b1cef7e00a10ee854f954"


@pytest.fixture
def old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the previous release's store, with the folders and modes privca gives a store (git keeps
    neither empty folders nor file modes)."""
    store = tmp_path / "store"
    shutil.copytree(FIXTURE, store)
    for folder in (store, store / "keys", store / "profiles", store / "pending"):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o700)
    for path in [store / "privca.db", *(store / "keys").iterdir()]:
        path.chmod(0o600)
    monkeypatch.setenv("PRIVCA_PASSPHRASE", FIXTURE_PASSPHRASE)
    return store


def _migration_state(store: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(store / "privca.db")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = [row[0] for row in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'privca' ORDER BY rowid")]
    finally:
        conn.close()
    return version, names


def test_the_previous_release_store_upgrades_in_place_and_verifies(old_store: Path, cli: Any) -> None:
    from privca.ledger.db import MIGRATIONS

    assert _migration_state(old_store) == (4, [name for name, _ in MIGRATIONS[:4]])
    result = cli("verify", "--store", old_store, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["checked"]["cas"] == 5 and report["checked"]["certificates"] == 2
    # The 22 events it had, and the baseline the upgrade recorded: the digest of each of its 5 CA, 2 certificate
    # and 5 CRL rows, and of its 2 cross-certificates.
    assert report["checked"]["keys"] == 5 and report["checked"]["events"] == 23
    assert report["checked"]["rows"] == 5 + 2 + 5 + 2
    # Upgraded: every migration recorded once, in one place.
    assert _migration_state(old_store) == (0, [name for name, _ in MIGRATIONS])
    conn = sqlite3.connect(old_store / "privca.db")
    try:
        action, details = conn.execute("SELECT action, details FROM events ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    assert action == "baseline" and len(json.loads(details)["rows"]) == report["checked"]["rows"]
    # What the old release recorded reads back as typed records.
    listed = json.loads(cli("list", "--store", old_store, "--json").stdout)["certificates"]
    assert {item["serial"]: (item["status"], item.get("revocation_reason")) for item in listed} == {
        VALID: ("valid", None), REVOKED: ("revoked", "keyCompromise")}
    cas = json.loads(cli("ca", "list", "--store", old_store, "--json").stdout)["cas"]
    assert [(ca["name"], ca["status"], ca["parent"]) for ca in cas] == [
        ("root-1", "retired", None), ("issuing-1", "retired", "root-1"), ("root-2", "active", None),
        ("issuing-2", "retired", "root-2"), ("issuing-3", "active", "root-2")]
    assert cas[0]["replaced_by"] == "root-2" and cas[1]["replaced_by"] == "issuing-2"


def test_the_upgraded_store_keeps_issuing_and_revoking(old_store: Path, cli: Any, make_csr: Any,
                                                         tmp_path: Path) -> None:
    csr = make_csr("expc3.csr")
    issued = cli("issue", csr, "--out", tmp_path / "out", "--store", old_store, "--json")
    assert issued.exit_code == 0, issued.stderr
    [record] = json.loads(issued.stdout)["certificates"]
    assert record["issuer"] == "issuing-3"
    checked = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", record["chain_path"],
                       record["cert_path"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert cli("revoke", VALID, "--reason", "superseded", "--store", old_store).exit_code == 0
    assert cli("crl", "--store", old_store).exit_code == 0
    assert cli("verify", "--store", old_store).exit_code == 0


def test_an_edited_previous_release_store_fails_verify(old_store: Path, cli: Any) -> None:
    """Negative control: the same store with one event edited behind privca's back is not whole."""
    conn = sqlite3.connect(old_store / "privca.db")
    conn.execute("UPDATE events SET details = replace(details, 'keyCompromise', 'superseded') WHERE action = 'revoke'")
    conn.commit()
    conn.close()
    result = cli("verify", "--store", old_store, "--json")
    assert result.exit_code == 13
    problems = [finding["problem"] for finding in json.loads(result.stdout)["findings"]]
    assert any(problem.startswith("was edited after it was recorded (revoke") for problem in problems), problems


def test_the_fixture_is_what_the_previous_release_wrote() -> None:
    """The fixture must stay as that release left it: never opened (and so upgraded) by a newer privca."""
    assert _migration_state(FIXTURE)[0] == 4
    assert not (FIXTURE / "privca.db-wal").exists() and not (FIXTURE / "privca.db-shm").exists()
