"""Revocation, CRLs, publish and the CRL/OCSP service, checked with real peers.

- openssl verify -crl_check / -crl_check_all: a revoked leaf or intermediate fails with error 23, a good one is OK.
- openssl ocsp against `privca serve` (a real process): good / revoked with reason / unknown, "Response verify OK".
- pkilint lint_crl and lint_ocsp_response: no ERROR or FATAL finding.
Every failure test proves, with snapshot(), that nothing changed.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
import re
from datetime import timezone, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from conftest import NOW, run_tool, shown_serial, snapshot
from privca.ledger.cas import active as active_ca

# Certificates are issued at the pinned NOW (yesterday) and CRLs by the CLI at the wall clock: openssl checks
# at the wall clock, when both are valid.
ATTIME = str(int(datetime.now(timezone.utc).timestamp()))


def _tool(name: str) -> str:
    """A console script installed next to the running Python (the test extra), else on PATH; missing fails."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing; install the test extra: pip install -e '.[test]'")
    return found


# --- helpers ----------------------------------------------------------------------------------------------------


@pytest.fixture
def leaves(store: Any, make_csr: Any, tmp_path: Path, passphrase: Any) -> list[dict[str, Any]]:
    """Three Expressway-C certificates issued at NOW from the session CA."""
    from privca.authority.signer import issue

    csrs = [make_csr(f"expc{i}.csr", cn=f"expc{i}.example.com", sans=[f"expc{i}.example.com"]) for i in range(3)]
    return [item.to_json() for item in issue(store, csrs, passphrase, now=NOW, out_dir=tmp_path / "certs")]


def issuing_pem(record: dict[str, Any], tmp_path: Path) -> Path:
    """The issuing CA certificate alone (the first PEM block of the chain file)."""
    chain = Path(record["chain_path"]).read_text()
    path = tmp_path / "issuing.pem"
    path.write_text(chain[: chain.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n")
    return path


def verify(record: dict[str, Any], *crl_files: Path, check_all: bool = False) -> subprocess.CompletedProcess:
    crl_args = [arg for path in crl_files for arg in ("-CRLfile", str(path))]
    # The time of this check, not of the session's start: a CRL signed minutes into a slow session is backdated by
    # only five minutes and would be "not yet valid" at the session's start.
    at = str(int(datetime.now(timezone.utc).timestamp()))
    return run_tool("openssl", "verify", "-attime", at, "-crl_check_all" if check_all else "-crl_check",
                    *crl_args, "-CAfile", record["chain_path"], record["cert_path"])


def load_crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(path.read_bytes())


def ledger_rows(store_path: Path, sql: str, *params: Any) -> list[tuple]:
    conn = sqlite3.connect(store_path / "privca.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def one_line_error(result: Any) -> None:
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


# --- revoke -----------------------------------------------------------------------------------------------------


def test_revoke_records_the_revocation_and_its_event(cli: Any, store_path: Path, leaves: list) -> None:
    serial = leaves[0]["serial"]
    result = cli("revoke", serial.upper(), "--reason", "KEYCOMPROMISE", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["serial"] == serial and record["status"] == "revoked"
    assert record["revocation_reason"] == "keyCompromise" and record["crl_of"] == "issuing-1"
    assert ledger_rows(store_path, "SELECT status, revocation_reason FROM certificates WHERE serial = ltrim(?, '0')", serial) == [
        ("revoked", "keyCompromise")]
    events = ledger_rows(store_path, "SELECT action, serial, details FROM events ORDER BY id DESC LIMIT 1")
    assert events[0][:2] == ("revoke", serial.lstrip("0")) and json.loads(events[0][2])["reason"] == "keyCompromise"
    # The other certificates are untouched.
    assert ledger_rows(store_path, "SELECT count(*) FROM certificates WHERE status = 'valid'") == [(2,)]


@pytest.mark.parametrize("case", ["unknown serial", "not hex", "bad reason", "already revoked", "CA without --ca",
                                  "--ca on a leaf", "root CA", "hold a CA", "already on hold", "unhold a valid one",
                                  "CA already revoked"])
def test_bad_revocations_are_refused_and_change_nothing(cli: Any, store_path: Path, leaves: list, case: str) -> None:
    serial, held = leaves[0]["serial"], leaves[1]["serial"]
    assert cli("revoke", serial, "--reason", "superseded", "--store", store_path).exit_code == 0
    assert cli("revoke", held, "--reason", "certificateHold", "--store", store_path).exit_code == 0
    root, issuing = ledger_rows(store_path, "SELECT serial FROM cas ORDER BY id")
    if case == "CA already revoked":
        assert cli("revoke", issuing[0], "--ca", "--reason", "superseded", "--store", store_path).exit_code == 0
    args = {
        "unknown serial": ["revoke", "abcdef0123", "--reason", "keyCompromise"],
        "not hex": ["revoke", "xyz", "--reason", "keyCompromise"],
        "bad reason": ["revoke", leaves[2]["serial"], "--reason", "stolen"],
        "already revoked": ["revoke", serial, "--reason", "keyCompromise"],
        "CA without --ca": ["revoke", issuing[0], "--reason", "keyCompromise"],
        "--ca on a leaf": ["revoke", leaves[2]["serial"], "--ca", "--reason", "keyCompromise"],
        "root CA": ["revoke", root[0], "--ca", "--reason", "keyCompromise"],
        "hold a CA": ["revoke", issuing[0], "--ca", "--reason", "certificateHold"],
        "already on hold": ["revoke", held, "--reason", "certificateHold"],
        "unhold a valid one": ["unhold", leaves[2]["serial"]],
        "CA already revoked": ["revoke", issuing[0], "--ca", "--reason", "keyCompromise"],
    }[case]
    before = snapshot(store_path)
    result = cli(*args, "--store", store_path)
    one_line_error(result)
    assert snapshot(store_path) == before
    expected = {"unknown serial": "no such certificate", "already revoked": "already revoked",
                "CA without --ca": "add --ca", "root CA": "root CA", "already on hold": "privca unhold",
                "bad reason": "choose one of"}.get(case)
    if expected:
        assert expected in result.stderr


def test_openssl_verify_reports_a_revoked_leaf_and_passes_a_good_one(
    cli: Any, store_path: Path, leaves: list, tmp_path: Path
) -> None:
    revoked, good = leaves[0], leaves[1]
    assert cli("revoke", revoked["serial"], "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    out = tmp_path / "crl"
    result = cli("crl", "--out", out, "--store", store_path)
    assert result.exit_code == 0, result.stderr
    for crl_file in (out / "issuing-1.crl", out / "issuing-1.crl.pem"):  # DER and PEM say the same
        bad = verify(revoked, crl_file)
        assert bad.returncode != 0 and "error 23" in bad.stdout + bad.stderr, bad
        assert "certificate revoked" in bad.stdout + bad.stderr
        ok = verify(good, crl_file)
        assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok
    # With the root's CRL too, the whole chain is checked: the good leaf still passes.
    ok = verify(good, out / "issuing-1.crl.pem", out / "root-1.crl.pem", check_all=True)
    assert ok.returncode == 0, ok
    # Negative control: without any CRL, openssl cannot check and refuses (error 3), so the OK above is real.
    missing = verify(good)
    assert missing.returncode != 0 and "unable to get certificate CRL" in missing.stdout + missing.stderr


def test_a_revoked_intermediate_goes_on_the_root_crl(cli: Any, store: Any, store_path: Path, leaves: list,
                                                       tmp_path: Path, make_csr: Any, passphrase: Any) -> None:
    from privca.errors import StoreError
    from privca.authority.signer import issue

    issuing_serial = ledger_rows(store_path, "SELECT serial FROM cas WHERE role = 'issuing'")[0][0]
    result = cli("revoke", issuing_serial, "--ca", "--reason", "caCompromise", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["crl_of"] == "root-1"
    out = tmp_path / "crl"
    assert cli("crl", "--out", out, "--store", store_path).exit_code == 0
    assert not (out / "issuing-1.crl").exists()  # a revoked CA signs no more CRLs
    root_crl = load_crl(out / "root-1.crl")
    entry = root_crl.get_revoked_certificate_by_serial_number(int(issuing_serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.ca_compromise
    # openssl: a leaf under the revoked intermediate fails at depth 1 with error 23. We need the issuing CA's
    # last CRL for the leaf level, so sign one as it stood before (none existed): use the library directly.
    fresh_store_crl = tmp_path / "empty-issuing.crl"
    from privca.authority.ca import load_issuer
    from privca.revocation.revoke import build_crl

    from privca.ledger.cas import latest

    issuing_ca = latest(store.ledger, "issuing")  # revoked above: no longer the active one
    crl = build_crl(load_issuer(store, issuing_ca, passphrase), [], now=NOW, days=7, crl_number=1)
    fresh_store_crl.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    bad = verify(leaves[1], fresh_store_crl, out / "root-1.crl", check_all=True)
    assert bad.returncode != 0 and "error 23 at 1 depth" in bad.stdout + bad.stderr, bad
    # And the store no longer issues from it.
    with pytest.raises(StoreError, match="no active issuing CA"):
        issue(store, [make_csr("late.csr")], passphrase, now=NOW, out_dir=tmp_path / "late")


def test_hold_then_release_then_revoke_for_good(cli: Any, store_path: Path, leaves: list, tmp_path: Path) -> None:
    serial = leaves[0]["serial"]
    assert cli("revoke", serial, "--reason", "certificateHold", "--store", store_path).exit_code == 0
    held_at = ledger_rows(store_path, "SELECT revoked_at FROM certificates WHERE serial = ltrim(?, '0')", serial)[0][0]
    assert cli("crl", "--out", tmp_path / "1", "--store", store_path).exit_code == 0
    entry = load_crl(tmp_path / "1" / "issuing-1.crl").get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold
    held = verify(leaves[0], tmp_path / "1" / "issuing-1.crl")
    assert "error 23" in held.stdout + held.stderr

    result = cli("unhold", serial, "--store", store_path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "valid"
    assert cli("crl", "--out", tmp_path / "2", "--store", store_path).exit_code == 0
    released = load_crl(tmp_path / "2" / "issuing-1.crl")
    assert released.get_revoked_certificate_by_serial_number(int(serial, 16)) is None
    assert verify(leaves[0], tmp_path / "2" / "issuing-1.crl").returncode == 0

    # Held again, then revoked for good: the revocation keeps the date the hold began.
    assert cli("revoke", serial, "--reason", "certificateHold", "--store", store_path).exit_code == 0
    held_again = ledger_rows(store_path, "SELECT revoked_at FROM certificates WHERE serial = ltrim(?, '0')", serial)[0][0]
    assert cli("revoke", serial, "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    assert ledger_rows(store_path, "SELECT status, revoked_at, revocation_reason FROM certificates WHERE serial = ltrim(?, '0')",
                       serial) == [("revoked", held_again, "keyCompromise")]
    actions = [row[0] for row in ledger_rows(store_path, "SELECT action FROM events WHERE serial = ltrim(?, '0') ORDER BY id",
                                             serial)]
    assert actions == ["issue", "hold", "release", "hold", "revoke"]
    assert held_at


# --- CRL contents -----------------------------------------------------------------------------------------------


def test_crl_contents_numbers_and_signature(store: Any, store_path: Path, leaves: list, passphrase: Any) -> None:
    from privca.revocation.revoke import REASONS, issue_crls, revoke

    for record, reason in zip(leaves, ("unspecified", "superseded", "certificateHold"), strict=True):
        revoke(store, record["serial"], reason, now=NOW)
    first = {r["ca"]: r for r in issue_crls(store, passphrase, now=NOW, days=7)}
    second = {r["ca"]: r for r in issue_crls(store, passphrase, now=NOW + timedelta(hours=1), days=3)}
    assert {ca: r["crl_number"] for ca, r in first.items()} == {"root-1": 1, "issuing-1": 1}
    assert {ca: r["crl_number"] for ca, r in second.items()} == {"root-1": 2, "issuing-1": 2}
    assert ledger_rows(store_path, "SELECT name, crl_number, crl_changes FROM cas ORDER BY id") == [
        ("root-1", 2, 0), ("issuing-1", 2, 0)]

    der = ledger_rows(store_path, "SELECT der FROM crls JOIN cas ON cas.id = crls.ca_id WHERE name = 'issuing-1'")
    crl = x509.load_der_x509_crl(der[0][0])
    issuing = x509.load_pem_x509_certificate(Path(leaves[0]["chain_path"]).read_bytes())
    assert crl.is_signature_valid(issuing.public_key())
    assert crl.issuer == issuing.subject
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crl.last_update_utc == NOW + timedelta(hours=1) - timedelta(minutes=5)
    assert crl.next_update_utc == crl.last_update_utc + timedelta(days=3)
    reasons = {}
    for entry in crl:
        found = [ext.value.reason for ext in entry.extensions if isinstance(ext.value, x509.CRLReason)]
        reasons[shown_serial(entry.serial_number)] = found[0] if found else None
    # RFC 5280 5.3.1: unspecified is expressed by leaving the reasonCode out.
    assert reasons == {leaves[0]["serial"]: None, leaves[1]["serial"]: x509.ReasonFlags.superseded,
                       leaves[2]["serial"]: x509.ReasonFlags.certificate_hold}
    assert set(REASONS) >= {"keyCompromise", "caCompromise", "affiliationChanged", "superseded",
                            "cessationOfOperation", "privilegeWithdrawn", "unspecified", "certificateHold"}
    events = [json.loads(row[0]) for row in ledger_rows(store_path, "SELECT details FROM events WHERE action = 'crl'")]
    assert [(e["ca"], e["crl_number"]) for e in events] == [("root-1", 1), ("issuing-1", 1), ("root-1", 2),
                                                            ("issuing-1", 2)]


def test_expired_certificates_leave_the_crl_a_crl_lifetime_after_expiry(store: Any, leaves: list,
                                                                      passphrase: Any) -> None:
    """RFC 5280 3.3: listed on CRLs made for one CRL lifetime (7 days) past expiry, then dropped; the rule reads
    only the new CRL's own time, never the previous CRL's."""
    from privca.revocation.revoke import issue_crls, revoke

    revoke(store, leaves[0]["serial"], "keyCompromise", now=NOW)
    expiry = datetime.fromisoformat(leaves[0]["not_after"])

    def entries_at(moment: datetime) -> int:
        return {r["ca"]: r["entries"] for r in issue_crls(store, passphrase, now=moment)}["issuing-1"]

    assert entries_at(expiry - timedelta(days=1)) == 1
    assert entries_at(expiry + timedelta(days=1)) == 1  # CRLs made after expiry still list it
    assert entries_at(expiry + timedelta(days=6)) == 1
    assert entries_at(expiry + timedelta(days=8)) == 0


def test_crl_is_built_from_a_list(store: Any, passphrase: Any) -> None:
    """10,000 entries: correct DER, every serial present (the benchmark measures the 100,000 case)."""
    from privca.authority.ca import load_issuer
    from privca.revocation.revoke import build_crl

    issuer = load_issuer(store, active_ca(store.ledger, "issuing"), passphrase)
    revoked_at = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # a CRL never precedes what it lists
    rows = [(format(n, "x"), revoked_at, "keyCompromise") for n in range(1, 10_001)]
    crl = build_crl(issuer, rows, now=NOW, days=7, crl_number=9)
    assert len(crl) == 10_000 and crl.is_signature_valid(issuer.cert.public_key())
    assert crl.get_revoked_certificate_by_serial_number(10_000) is not None


def test_bad_crl_requests_change_nothing(cli: Any, store_path: Path, leaves: list, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase at all\n")
    wrong.chmod(0o600)
    (out / "issuing-1.crl").mkdir()  # a folder where a CRL would go
    cases = [
        ("crl", "--days", "0", "--out", tmp_path / "fresh"),
        ("crl", "--days", "400"),
        ("crl", "--out", in_the_way),
        ("crl", "--out", out),
        ("crl", "--passphrase-file", wrong, "--out", tmp_path / "fresh"),
    ]
    for args in cases:
        before = snapshot(store_path, out, tmp_path / "fresh", in_the_way.parent)
        result = cli(*args, "--store", store_path)
        one_line_error(result)
        assert snapshot(store_path, out, tmp_path / "fresh", in_the_way.parent) == before, args
    assert not (tmp_path / "fresh").exists()


def test_pkilint_finds_no_error_in_the_crls(store: Any, store_path: Path, leaves: list, tmp_path: Path,
                                             passphrase: Any) -> None:
    from privca.revocation.revoke import issue_crls, revoke

    for record, reason in zip(leaves, ("keyCompromise", "unspecified", "certificateHold"), strict=True):
        revoke(store, record["serial"], reason, now=NOW)
    issue_crls(store, passphrase, now=NOW, out_dir=tmp_path / "crl")
    for name in ("issuing-1.crl", "root-1.crl"):
        findings = lint_crl(tmp_path / "crl" / name)
        assert findings["validators"] > 10, findings  # the linter really looked at it
        assert not findings["bad"], findings
    # Negative control: a CRL without the CRL number and AKI that RFC 5280 5.2 requires is an ERROR to pkilint.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bare CA")])
    bare = (x509.CertificateRevocationListBuilder().issuer_name(name).last_update(NOW)
            .next_update(NOW + timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "bare.crl").write_bytes(bare.public_bytes(serialization.Encoding.DER))
    assert lint_crl(tmp_path / "bare.crl")["bad"]


def lint_crl(path: Path) -> dict[str, Any]:
    result = run_tool(_tool("lint_crl"), "lint", "-t", "CRL", "-p", "PKIX", "-s", "ALL", "-f", "JSON", path)
    assert result.stdout, result.stderr
    return _pkilint_summary(result.stdout)


def _pkilint_summary(text: str) -> dict[str, Any]:
    results = json.loads(text)["results"]
    bad = [(r["validator"], f) for r in results for f in r["finding_descriptions"]
           if f["severity"] in ("ERROR", "FATAL")]
    return {"validators": len(results), "bad": bad}


# --- status -----------------------------------------------------------------------------------------------------


def test_crl_status_states(store: Any, leaves: list, passphrase: Any) -> None:
    from privca.revocation.revoke import crl_status, issue_crls, revoke

    def states(moment: datetime) -> dict[str, str]:
        return {r["ca"]: r["state"] for r in crl_status(store, moment)}

    assert states(NOW) == {"root-1": "missing", "issuing-1": "missing"}
    issue_crls(store, passphrase, now=NOW, days=6)
    assert states(NOW) == {"root-1": "fresh", "issuing-1": "fresh"}
    assert states(NOW + timedelta(days=3, hours=23)) == {"root-1": "fresh", "issuing-1": "fresh"}
    assert states(NOW + timedelta(days=4, hours=1)) == {"root-1": "due", "issuing-1": "due"}  # < 1/3 left
    assert states(NOW + timedelta(days=6)) == {"root-1": "stale", "issuing-1": "stale"}
    revoke(store, leaves[0]["serial"], "keyCompromise", now=NOW)
    report = {r["ca"]: r for r in crl_status(store, NOW)}
    assert report["issuing-1"]["state"] == "due" and report["issuing-1"]["pending_changes"] == 1
    assert report["root-1"]["state"] == "fresh"


def test_status_exit_codes(cli: Any, store: Any, store_path: Path, passphrase: Any,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    import privca.cli.revoke_cmd as revoke_cmd
    from privca.revocation.revoke import issue_crls

    monkeypatch.setattr(revoke_cmd, "now", lambda: NOW)
    result = cli("status", "--store", store_path, "--json")
    assert result.exit_code == 2 and {r["state"] for r in json.loads(result.stdout)["crls"]} == {"missing"}
    issue_crls(store, passphrase, now=NOW)
    result = cli("status", "--store", store_path)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("privca OK: 2 CRL(s) fresh\n")  # the line a monitoring system shows
    assert "fresh" in result.stdout and "issuing-1" in result.stdout
    monkeypatch.setattr(revoke_cmd, "now", lambda: NOW + timedelta(days=5))
    due = cli("status", "--store", store_path)
    assert due.exit_code == 1 and due.stdout.startswith("privca WARNING: root-1 due; issuing-1 due")
    monkeypatch.setattr(revoke_cmd, "now", lambda: NOW + timedelta(days=8))
    result = cli("status", "--store", store_path)
    assert result.exit_code == 2 and "stale" in result.stdout and result.stdout.startswith("privca CRITICAL")


def test_status_is_critical_when_nothing_can_be_issued(cli: Any, store: Any, store_path: Path,
                                                      passphrase: Any) -> None:
    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=NOW)
    issuing = active_ca(store.ledger, "issuing")
    assert cli("revoke", issuing.serial, "--ca", "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    # After a command run at the real time, the library too runs at the real time: privca refuses a clock that
    # went back a day. The root's CRL now lists the intermediate; every CRL is fresh.
    issue_crls(store, passphrase, now=datetime.now(timezone.utc))
    result = cli("status", "--store", store_path, "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert not data["issuing"]["ok"] and "no active issuing CA (issuing-1 is revoked)" in data["summary"]


# --- publish and URLs -------------------------------------------------------------------------------------------


def test_publish_writes_crls_at_their_url_paths(cli: Any, store_path: Path, leaves: list, tmp_path: Path) -> None:
    www = tmp_path / "www"
    before = snapshot(store_path)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    one_line_error(cli("publish", not_a_folder, "--store", store_path))
    result = cli("publish", www, "--store", store_path)
    one_line_error(result)  # nothing signed yet
    assert "privca crl" in result.stderr and not www.exists() and snapshot(store_path) == before

    assert cli("revoke", leaves[0]["serial"], "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    assert cli("crl", "--store", store_path).exit_code == 0
    result = cli("publish", www, "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    # The session CA's CRL URLs are http://pki.example.test/crl/<ca>.crl.
    assert sorted(p.relative_to(www).as_posix() for p in (www / "crl").rglob("*") if p.is_file()) == [
        "crl/issuing-1.crl", "crl/issuing-1.crl.pem", "crl/root-1.crl", "crl/root-1.crl.pem"]
    assert sorted(p.name for p in www.iterdir()) == ["crl", "ocsp"]  # pre-signed OCSP: tests/test_presign.py
    stored = ledger_rows(store_path, "SELECT der FROM crls JOIN cas ON cas.id = ca_id WHERE name = 'issuing-1'")[0][0]
    assert (www / "crl" / "issuing-1.crl").read_bytes() == stored
    pem = x509.load_pem_x509_crl((www / "crl" / "issuing-1.crl.pem").read_bytes())
    assert pem.public_bytes(serialization.Encoding.DER) == stored
    revoked = verify(leaves[0], www / "crl" / "issuing-1.crl")
    assert "error 23" in revoked.stdout + revoked.stderr
    # Publishing again replaces the files in place.
    assert cli("crl", "--store", store_path).exit_code == 0
    assert cli("publish", www, "--store", store_path).exit_code == 0
    number = load_crl(www / "crl" / "issuing-1.crl").extensions.get_extension_for_class(x509.CRLNumber).value
    assert number.crl_number == 2


def test_set_url_changes_what_new_certificates_carry(cli: Any, store: Any, store_path: Path, make_csr: Any,
                                                     tmp_path: Path, passphrase: Any) -> None:
    from privca.authority.signer import issue

    before = snapshot(store_path)
    for args in (["--crl-url", "ftp://pki.example.com/crl"], ["--ocsp-url", "http://a b"], ["--ca", "nope",
                 "--crl-url", "http://x.example.com"], []):
        one_line_error(cli("ca", "set-url", *args, "--store", store_path))
        assert snapshot(store_path) == before

    result = cli("ca", "set-url", "--crl-url", "http://crl.example.com/pki/", "--ocsp-url",
                 "http://ocsp.example.com/check", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["cas"] == [
        {"ca": "root-1", "crl_url": "http://crl.example.com/pki/root-1.crl", "ocsp_url": None},
        {"ca": "issuing-1", "crl_url": "http://crl.example.com/pki/issuing-1.crl",
         "ocsp_url": "http://ocsp.example.com/check"}]
    # At the real time, as the set-url command before it (privca refuses a clock that went back a day).
    record = issue(store, [make_csr("new.csr")], passphrase, now=datetime.now(timezone.utc),
                   out_dir=tmp_path / "new")[0].to_json()
    cert = x509.load_pem_x509_certificate(Path(record["cert_path"]).read_bytes())
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://crl.example.com/pki/issuing-1.crl"
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://ocsp.example.com/check"]
    assert ledger_rows(store_path, "SELECT count(*) FROM events WHERE action = 'ca-urls'") == [(2,)]

    assert cli("ca", "set-url", "--ocsp-url", "none", "--store", store_path).exit_code == 0
    record = issue(store, [make_csr("plain.csr")], passphrase, now=datetime.now(timezone.utc),
                   out_dir=tmp_path / "plain")[0].to_json()
    cert = x509.load_pem_x509_certificate(Path(record["cert_path"]).read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_url_paths_cannot_escape_the_publish_folder() -> None:
    from privca.errors import UsageError
    from privca.revocation.publish import url_path

    assert url_path("http://pki.example.com/crl/issuing-1.crl").as_posix() == "crl/issuing-1.crl"
    for url in ("http://pki.example.com/", "http://h/crl/../../etc/passwd", "http://h/a/%2e%2e/b",
                "http://h/a%2fb"):
        with pytest.raises(UsageError):
            url_path(url)


# --- privca serve: CRLs over HTTP and OCSP ----------------------------------------------------------------------


@pytest.fixture
def served(store: Any, store_path: Path, leaves: list, passphrase: Any) -> Iterator[dict[str, Any]]:
    """`privca serve` as a real process on a free loopback port, with CRLs already signed."""
    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=NOW)
    process = subprocess.Popen([sys.executable, "-m", "privca", "serve", "--store", str(store_path), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline() if process.stderr else ""
        assert "listening on http://127.0.0.1:" in first, first + (process.stderr.read() if process.stderr else "")
        yield {"url": first.split("listening on ")[1].strip(), "process": process}
    finally:
        process.terminate()
        process.communicate(timeout=10)  # waits, and closes the pipe


def openssl_ocsp(url: str, issuer: Path, cafile: str, *target: str) -> str:
    result = run_tool("openssl", "ocsp", "-url", url, "-issuer", issuer, "-CAfile", cafile, "-attime", ATTIME,
                      "-resp_text", *target)
    return result.stdout + result.stderr


def test_openssl_ocsp_against_privca_serve(served: dict[str, Any], cli: Any, store_path: Path, leaves: list,
                                           tmp_path: Path) -> None:
    issuer = issuing_pem(leaves[0], tmp_path)
    chain = leaves[0]["chain_path"]
    good = openssl_ocsp(served["url"], issuer, chain, "-cert", leaves[0]["cert_path"])
    assert "Response verify OK" in good and f"{leaves[0]['cert_path']}: good" in good, good
    assert "WARNING: no nonce" not in good  # the nonce openssl sent came back

    # Revoked while the service runs: the next answer says so, with the reason, over a SHA-256 CertID.
    assert cli("revoke", leaves[0]["serial"], "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    revoked = openssl_ocsp(served["url"], issuer, chain, "-sha256", "-cert", leaves[0]["cert_path"])
    assert "Response verify OK" in revoked and f"{leaves[0]['cert_path']}: revoked" in revoked, revoked
    assert "Reason: keyCompromise" in revoked and "Hash Algorithm: sha256" in revoked

    unknown = openssl_ocsp(served["url"] + "/ocsp", issuer, chain, "-serial", "0x1234")
    assert "Response verify OK" in unknown and "0x1234: unknown" in unknown, unknown

    # Negative controls: a foreign CA is refused, and a response whose signature was tampered with fails to verify
    # (so "Response verify OK" above is openssl's own check of the CA's signature).
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign CA")])
    foreign = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=9))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(key, hashes.SHA256()))
    foreign_pem = tmp_path / "foreign.pem"
    foreign_pem.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    refused = openssl_ocsp(served["url"], foreign_pem, str(foreign_pem), "-serial", "0x1234")
    assert "unauthorized" in refused, refused
    saved = tmp_path / "good.der"
    assert "Response verify OK" in openssl_ocsp(served["url"], issuer, chain, "-cert", leaves[1]["cert_path"],
                                                "-respout", str(saved))
    tampered = tmp_path / "tampered.der"
    body = bytearray(saved.read_bytes())
    body[-1] ^= 0x01  # the last byte of the signature
    tampered.write_bytes(bytes(body))

    def check_saved(path: Path) -> str:
        result = run_tool("openssl", "ocsp", "-respin", path, "-issuer", issuer, "-CAfile", chain, "-attime", ATTIME,
                          "-no_nonce", "-cert", leaves[1]["cert_path"])
        return result.stdout + result.stderr

    assert "Response verify OK" in check_saved(saved)
    assert "Response Verify Failure" in check_saved(tampered)


def test_ocsp_stops_vouching_for_a_revoked_ca_and_refuses_md5(served: dict[str, Any], cli: Any, store_path: Path,
                                                                leaves: list, tmp_path: Path) -> None:
    import urllib.request

    issuer = issuing_pem(leaves[0], tmp_path)
    chain = leaves[0]["chain_path"]
    before = openssl_ocsp(served["url"], issuer, chain, "-cert", leaves[0]["cert_path"])
    assert f"{leaves[0]['cert_path']}: good" in before, before
    # A request hashed with MD5 gets a malformedRequest answer, and the service keeps serving.
    ca = x509.load_pem_x509_certificate(issuer.read_bytes())
    md5 = tmp_path / "md5.req"  # cryptography will not build one; openssl will
    made = run_tool("openssl", "ocsp", "-issuer", issuer, "-md5", "-cert", leaves[0]["cert_path"], "-no_nonce",
                    "-reqout", md5)
    assert made.returncode == 0, made.stderr
    request = urllib.request.Request(served["url"], data=md5.read_bytes(),
                                     headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert ocsp.load_der_ocsp_response(reply.read()).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # The issuing CA is revoked (its key leaked) while the service runs: it must stop signing "good" at once.
    serial = format(ca.serial_number, "x")
    assert cli("revoke", serial, "--ca", "--reason", "caCompromise", "--store", store_path).exit_code == 0
    after = openssl_ocsp(served["url"], issuer, chain, "-cert", leaves[0]["cert_path"])
    assert "unauthorized" in after and ": good" not in after, after


def test_ocsp_get_hold_and_pkilint(served: dict[str, Any], cli: Any, store_path: Path, leaves: list,
                                   tmp_path: Path) -> None:
    cert = x509.load_pem_x509_certificate(Path(leaves[1]["cert_path"]).read_bytes())
    issuer = x509.load_pem_x509_certificate(issuing_pem(leaves[1], tmp_path).read_bytes())
    assert cli("revoke", leaves[1]["serial"], "--reason", "certificateHold", "--store", store_path).exit_code == 0
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    encoded = urllib.request.quote(base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode(), safe="")
    with urllib.request.urlopen(f"{served['url']}/ocsp/{encoded}", timeout=10) as reply:  # RFC 6960 A.1 GET
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        body = reply.read()
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.certificate_hold
    issuer.public_key().verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
                               response.signature_hash_algorithm)
    (tmp_path / "resp.der").write_bytes(body)
    linted = run_tool(_tool("lint_ocsp_response"), "lint", "-s", "ALL", "-f", "JSON", tmp_path / "resp.der")
    summary = _pkilint_summary(linted.stdout)
    assert summary["validators"] > 3 and not summary["bad"], summary
    # Garbage at the OCSP path gets an OCSP malformedRequest, not a crash.
    with urllib.request.urlopen(f"{served['url']}/ocsp/not*base64", timeout=10) as reply:
        assert ocsp.load_der_ocsp_response(reply.read()).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_serve_hands_out_the_latest_crl(served: dict[str, Any], store: Any, store_path: Path, leaves: list,
                                        passphrase: Any) -> None:
    from privca.revocation.revoke import issue_crls, revoke

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(served["url"] + path, timeout=10) as reply:
            assert reply.status == 200
            return reply.read()

    first = x509.load_der_x509_crl(fetch("/crl/issuing-1.crl"))
    assert first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1 and len(first) == 0
    revoke(store, leaves[2]["serial"], "superseded", now=NOW)
    issue_crls(store, passphrase, now=NOW + timedelta(minutes=1))
    second = x509.load_pem_x509_crl(fetch("/crl/issuing-1.crl.pem"))  # the new CRL, without a restart
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2 and len(second) == 1
    assert x509.load_der_x509_crl(fetch("/crl/root-1.crl")).issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test UC Root CA"
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch("/crl/nothing.crl")
    assert missing.value.code == 404


def test_serve_refuses_a_wrong_passphrase(store_path: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("definitely not it\n")
    wrong.chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "privca", "serve", "--store", str(store_path), "--port", "0",
                             "--passphrase-file", str(wrong)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and result.stderr.startswith("Error: ") and "passphrase" in result.stderr
    assert "Traceback" not in result.stderr


def test_publish_does_not_follow_a_symlinked_folder_out(cli: Any, store: Any, store_path: Path, passphrase: Any,
                                                        tmp_path: Path) -> None:
    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=NOW)
    web, elsewhere = tmp_path / "www", tmp_path / "elsewhere"
    web.mkdir()
    elsewhere.mkdir()
    (web / "crl").symlink_to(elsewhere)
    refused = cli("publish", web, "--store", store_path)
    assert refused.exit_code != 0 and "leads outside" in refused.stderr
    assert not any(elsewhere.iterdir())
    (web / "crl").unlink()  # negative control: a real folder is fine
    assert cli("publish", web, "--store", store_path).exit_code == 0
    assert (web / "crl" / "issuing-1.crl").is_file()


@pytest.mark.parametrize("url", ["http://x/crl?a=b", "http://", "http://x/%2e%2e/crl", "https://x/crl#frag",
                                 "ftp://x/crl", "http://exa mple.com/crl"])
def test_urls_that_would_be_baked_into_certificates_are_checked(cli: Any, tmp_path: Path, url: str) -> None:
    result = cli("init", "--root-cn", "U Root", "--issuing-cn", "U Issuing", "--crl-url", url, "--store",
                 tmp_path / "s")
    assert result.exit_code != 0 and "--crl-url" in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_new_ca_starts_with_fresh_crls(cli: Any, tmp_path: Path) -> None:
    """init and rotate sign the first CRLs while the keys are unlocked, so monitoring is green from day one and
    the CRL URL in the first certificates has something to serve."""
    store = tmp_path / "s"
    assert cli("init", "--root-cn", "Fresh Root", "--issuing-cn", "Fresh Issuing 1", "--key-type", "ec:secp256r1",
               "--crl-url", "http://pki.example.test/crl", "--store", store).exit_code == 0
    status = cli("status", "--store", store)
    assert status.exit_code == 0 and status.stdout.startswith("privca OK"), status.stdout
    assert cli("rotate", "intermediate", "--store", store).exit_code == 0
    status = cli("status", "--store", store, "--json")
    assert status.exit_code == 0, status.stdout
    # issuing-1 signed nothing before it was retired: no peer needs it, so it needs no CRL either.
    assert {r["ca"] for r in json.loads(status.stdout)["crls"]} == {"root-1", "issuing-2"}
    assert cli("publish", tmp_path / "www", "--store", store).exit_code == 0
    assert (tmp_path / "www" / "crl" / "issuing-2.crl").is_file()


def test_init_without_a_crl_url_gives_a_hint_that_works(cli: Any, tmp_path: Path) -> None:
    store = tmp_path / "bare"
    made = cli("init", "--root-cn", "Bare Root", "--issuing-cn", "Bare Issuing 1", "--key-type", "ec:secp256r1",
               "--store", store)
    assert made.exit_code == 0, made.stderr
    assert "privca publish" not in made.stdout.split("No CRL URL")[0] and "privca ca set-url --crl-url" in made.stdout
    www = tmp_path / "www"
    # Negative control: publish as such is refused, which is why the hint names set-url first.
    assert cli("publish", www, "--store", store).exit_code != 0
    assert cli("ca", "set-url", "--crl-url", "http://pki.example.com/crl", "--store", store).exit_code == 0
    published = cli("publish", www, "--store", store)
    assert published.exit_code == 0, published.stderr
    crl = x509.load_der_x509_crl((www / "crl" / "issuing-1.crl").read_bytes())
    assert crl.issuer.rfc4514_string() == "CN=Bare Issuing 1"


def test_a_crl_is_never_dated_before_the_revocations_it_lists(cli: Any, store: Any, store_path: Path, leaves: list,
                                                              passphrase: Any) -> None:
    from privca.revocation.revoke import issue_crls, revoke

    # Negative control: with nothing revoked lately, thisUpdate keeps its 5 minutes for slow peer clocks.
    quiet = {r["ca"]: r for r in issue_crls(store, passphrase, now=NOW)}
    assert quiet["issuing-1"]["this_update"] == (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    revoke(store, leaves[0]["serial"], "keyCompromise", now=NOW + timedelta(minutes=2))
    issue_crls(store, passphrase, now=NOW + timedelta(minutes=3))
    der = ledger_rows(store_path, "SELECT der FROM crls JOIN cas ON cas.id = crls.ca_id WHERE name = 'issuing-1'")
    text = run_tool("openssl", "crl", "-inform", "DER", "-noout", "-text", input=der[0][0]).stdout.decode()
    # OpenSSL's reading of the CRL, not privca's: Last Update is not before any Revocation Date.
    stamp = "%b %d %H:%M:%S %Y GMT"
    last = datetime.strptime(" ".join(re.search(r"Last Update: (.+)", text)[1].split()), stamp)
    revoked = [datetime.strptime(" ".join(m.split()), stamp) for m in re.findall(r"Revocation Date: (.+)", text)]
    assert revoked and all(last >= moment for moment in revoked), text
    assert last <= (NOW + timedelta(minutes=3)).replace(tzinfo=None)
