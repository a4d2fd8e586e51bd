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

from conftest import PASSPHRASE, build_csr, privca_subprocess, run_tool

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


# --- the events log and its seals ---------------------------------------------------------------------------------

def _events(store: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(store / "privca.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    finally:
        conn.close()


def _rechain(store: Path, edits: dict[int, tuple[str, str | None, str]], append: list[tuple[str, str | None, str]]
             ) -> None:
    """Rewrite the events log as an intruder would: edit events (action, serial, details) and append forged ones,
    recomputing every hash from the first edit on so that the hash chain itself is unbroken."""
    from privca.ledger.chain import event_hash

    rows = [dict(row) for row in _events(store)]
    for row in rows:
        if row["id"] in edits:
            row["action"], row["serial"], row["details"] = edits[row["id"]]
    for action, serial, details in append:
        rows.append({"id": rows[-1]["id"] + 1, "at": rows[-1]["at"], "action": action, "actor": rows[-1]["actor"],
                     "serial": serial, "details": details})
    conn = sqlite3.connect(store / "privca.db", isolation_level=None)
    try:
        prev = "0" * 64
        conn.execute("DELETE FROM events")
        for row in rows:
            row["prev_hash"] = prev
            row["hash"] = prev = event_hash(prev, row["id"], row["at"], row["action"], row["actor"], row["serial"],
                                            row["details"])
            conn.execute("INSERT INTO events (id, at, action, actor, serial, details, prev_hash, hash) "
                         "VALUES (:id, :at, :action, :actor, :serial, :details, :prev_hash, :hash)", row)
    finally:
        conn.close()


def _cert_row_digest(store: Path, serial: str) -> tuple[str, str]:
    from privca.ledger import rows

    conn = sqlite3.connect(store / "privca.db")
    try:
        cursor = conn.execute("SELECT * FROM certificates WHERE serial = ?", (serial.lstrip("0"),))
        values = cursor.fetchone()
        names = [column[0] for column in cursor.description]
    finally:
        conn.close()
    return rows.key("certificates", values[names.index("id")]), rows.digest(names, values)


def test_deleting_the_last_events_is_named(scene: dict[str, Any]) -> None:
    store = scene["store"]
    last = len(_events(store))
    sql(store, "DELETE FROM events WHERE id > ?", last - 3)
    code, report = verify(store)
    assert code == 13
    assert any(p.startswith("seals: seal #") and f"the log ends at event #{last - 3}" in p
               for p in problems(report)), problems(report)


def test_an_earlier_event_rewritten_with_recomputed_hashes_is_named(scene: dict[str, Any]) -> None:
    """The revocation's event rewritten into a harmless one and the chain recomputed: the hash chain holds, the
    seal made after it does not."""
    store = scene["store"]
    revoke = next(row for row in _events(store) if row["action"] == "revoke")
    _rechain(store, {revoke["id"]: ("backup", None, '{"file":"/tmp/b"}')}, [])
    code, report = verify(store)
    assert code == 13
    assert not any(p.startswith("events: ") for p in problems(report))  # the chain itself is whole
    assert any(p.startswith("seals: seal #") and "were edited, forged or replaced" in p for p in problems(report))


def test_a_forged_issue_event_appended_is_named(scene: dict[str, Any]) -> None:
    """A certificate row slipped in with a forged issue event (hash recomputed, row digest right): issue is always
    sealed by the CA key, so an unsealed one is named."""
    store, serials = scene["store"], scene["serials"]
    sql(store, "INSERT INTO certificates (serial, issuer_id, profile, subject, sans, eku, key_type, key_size, "
        "not_before, not_after, status, fingerprint_sha256, issued_by, issued_at, pem) SELECT 'abcdef', issuer_id, "
        "profile, subject, sans, eku, key_type, key_size, not_before, not_after, status, fingerprint_sha256, "
        "issued_by, issued_at, pem FROM certificates WHERE serial = ?", serials[2].lstrip("0"))
    row_key, digest = _cert_row_digest(store, "abcdef")
    _rechain(store, {}, [("issue", "abcdef", json.dumps({"rows": {row_key: digest}}, sort_keys=True,
                                                        separators=(",", ":")))])
    code, report = verify(store)
    assert code == 13
    assert any(p.startswith("seals: event #") and "issue abcdef" in p and "no seal covers it" in p
               for p in problems(report)), problems(report)


def test_a_forged_release_after_the_last_seal_is_shown(scene: dict[str, Any]) -> None:
    """The limit of what a store can prove alone: an un-revoke covered by a forged event of a command that seals
    nothing (a release) verifies, but the event is listed after the last seal, for the administrator to see."""
    store, serials = scene["store"], scene["serials"]
    sql(store, "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL "
        "WHERE serial = ?", serials[1].lstrip("0"))
    row_key, digest = _cert_row_digest(store, serials[1])
    _rechain(store, {}, [("release", serials[1].lstrip("0"), json.dumps({"rows": {row_key: digest}},
                                                                          sort_keys=True, separators=(",", ":")))])
    code, report = verify(store)
    assert code == 0, problems(report)
    notes = [f"{n['subject']}: {n['note']}" for n in report["notes"] if n["check"] == "seals"]
    assert any(f"release {serials[1]}" in note and "after the last seal" in note for note in notes), notes


def test_deleting_the_last_seal_is_named(scene: dict[str, Any]) -> None:
    store = scene["store"]
    sql(store, "DELETE FROM seals WHERE id = (SELECT max(id) FROM seals)")
    code, report = verify(store)
    assert code == 13
    assert any(p.startswith("seals: event #") and "that seal is gone (deleted)" in p for p in problems(report))


def test_a_seal_forged_with_another_key_is_named(scene: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from privca.common.signatures import sign_sha256
    from privca.ledger.chain import seal_payload

    store = scene["store"]
    last = _events(store)[-1]
    conn = sqlite3.connect(store / "privca.db", isolation_level=None)
    try:
        fingerprint = conn.execute("SELECT fingerprint_sha256 FROM cas WHERE id = 2").fetchone()[0]
    finally:
        conn.close()
    at = str(last["at"])
    algorithm, signature = sign_sha256(ec.generate_private_key(ec.SECP256R1()),
                                       seal_payload(last["id"], last["hash"], at, 2, fingerprint))
    sql(store, "INSERT INTO seals (count, head, at, ca_id, ca_fingerprint, algorithm, signature) VALUES "
        "(?, ?, ?, 2, ?, ?, ?)", last["id"], last["hash"], at, fingerprint, algorithm, signature)
    code, report = verify(store)
    assert code == 13
    assert any(p.startswith("seals: seal #") and "does not verify with CA issuing-1's certificate" in p
               for p in problems(report)), problems(report)
    warned = privca_subprocess("list", "--store", store, env=ENV)
    assert warned.returncode == 0 and "does not verify with its CA's certificate" in warned.stderr


def test_the_seals_chain_to_the_root_and_openssl_agrees(scene: dict[str, Any], tmp_path: Path) -> None:
    """The report names the root the seals chain to by its fingerprint, and the newest seal's signature verifies
    with openssl and the CA's public key alone (and not once its payload is changed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser

    from privca.ledger.chain import seal_payload

    store = scene["store"]
    code, report = verify(store)
    assert code == 0
    conn = sqlite3.connect(store / "privca.db")
    try:
        root_fp = conn.execute("SELECT fingerprint_sha256 FROM cas WHERE role = 'root'").fetchone()[0]
        seal = conn.execute("SELECT count, head, at, ca_id, ca_fingerprint, algorithm, signature FROM seals "
                            "ORDER BY id DESC LIMIT 1").fetchone()
        pem = conn.execute("SELECT pem FROM cas WHERE id = ?", (seal[3],)).fetchone()[0]
    finally:
        conn.close()
    assert report["seals"]["roots"] == [{"name": "root-1", "fingerprint_sha256": root_fp}]
    assert report["seals"]["sealed_events"] == len(_events(store)) - 1  # the challenge came after the last crl
    assert report["seals"]["unsealed_events"] == 1
    public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    (tmp_path / "ca.pub").write_bytes(public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "payload").write_bytes(seal_payload(seal[0], seal[1], seal[2], seal[3], seal[4]))
    (tmp_path / "signature").write_bytes(seal[6])
    assert seal[5] == "rsa-pkcs1v15-sha256"
    checked = run_tool("openssl", "dgst", "-sha256", "-verify", tmp_path / "ca.pub", "-signature",
                       tmp_path / "signature", tmp_path / "payload")
    assert checked.returncode == 0 and "Verified OK" in checked.stdout
    (tmp_path / "payload").write_bytes(seal_payload(seal[0] + 1, seal[1], seal[2], seal[3], seal[4]))
    changed = run_tool("openssl", "dgst", "-sha256", "-verify", tmp_path / "ca.pub", "-signature",
                       tmp_path / "signature", tmp_path / "payload")
    assert changed.returncode != 0


def test_one_seal_per_write_command_not_per_certificate(scene: dict[str, Any], rsa2048_key: Any,
                                                        tmp_path: Path) -> None:
    """A batch of four certificates is one transaction and one signature; revoke unlocks no key and seals nothing."""
    store = scene["store"]

    def seals() -> int:
        conn = sqlite3.connect(store / "privca.db")
        try:
            return int(conn.execute("SELECT count(*) FROM seals").fetchone()[0])
        finally:
            conn.close()

    before = seals()
    csrs = []
    for index in range(4):
        path = tmp_path / f"b{index}.csr"
        path.write_bytes(build_csr(rsa2048_key, cn=f"b{index}.example.com", sans=[f"b{index}.example.com"])
                         .public_bytes(serialization.Encoding.PEM))
        csrs.append(path)
    issued = json.loads(_run("issue", *csrs, "--out", tmp_path / "out", "--store", store, "--json"))["certificates"]
    assert seals() == before + 1
    _run("revoke", issued[0]["serial"], "--reason", "superseded", "--store", store)
    assert seals() == before + 1
    assert verify(store)[0] == 0


def test_read_commands_warn_when_the_signed_head_does_not_match(scene: dict[str, Any]) -> None:
    store = scene["store"]
    clean = privca_subprocess("list", "--store", store, env=ENV)
    assert clean.returncode == 0 and clean.stderr == ""  # negative control: no warning on a whole store
    last = len(_events(store))
    sql(store, "DELETE FROM events WHERE id > ?", last - 3)
    for command in (["list"], ["status"], ["ca", "list"], ["export", "pem", "--out", str(store.parent / "x.pem")]):
        warned = privca_subprocess(*command, "--store", store, env=ENV)
        assert "Warning: the events log was cut short" in warned.stderr, (command, warned.stderr)
        assert len([line for line in warned.stderr.splitlines() if line.startswith("Warning:")]) == 1


_READ_AND_SAY_IMPORTS = """
import sys
from privca.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("imported cryptography: %s\\n" % ("cryptography" in sys.modules))
"""


def test_the_read_check_imports_cryptography_only_for_a_seal_not_yet_checked(scene: dict[str, Any], rsa2048_key: Any,
                                                                            tmp_path: Path) -> None:
    """``privca list`` needs no cryptography: the head check imports it only to check a seal this user has not
    checked (or made) before; the seal is then remembered outside the store."""
    import os
    import subprocess
    import sys

    store = scene["store"]
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def list_imports() -> str:
        done = subprocess.run([sys.executable, "-c", _READ_AND_SAY_IMPORTS, "list", "--store", str(store)],
                              capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
        assert "Warning" not in done.stderr, done.stderr
        return done.stderr.strip().splitlines()[-1]

    assert list_imports() == "imported cryptography: True"  # a seal never checked by this user: checked now
    assert list_imports() == "imported cryptography: False"  # remembered
    csr = tmp_path / "c.csr"
    csr.write_bytes(build_csr(rsa2048_key, cn="c.example.com", sans=["c.example.com"])
                    .public_bytes(serialization.Encoding.PEM))
    done = privca_subprocess("issue", csr, "--out", tmp_path / "out", "--store", store, env=env)
    assert done.returncode == 0, done.stderr
    assert list_imports() == "imported cryptography: False"  # the seal issue made is known to be genuine
