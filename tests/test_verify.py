"""privca verify: a whole store passes; each kind of damage is found and named (a negative control per check)."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import run_tool, snapshot
from privca.ledger.events import record as record_event



@pytest.fixture
def issued(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path) -> list[dict[str, Any]]:
    """Three certificates issued into tmp_path/out."""
    csrs = [make_csr(f"n{i}.csr", cn=f"n{i}.example.com", sans=[f"n{i}.example.com"]) for i in range(3)]
    result = cli("issue", *csrs, "--out", tmp_path / "out", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["certificates"]


def _verify(cli: Any, store_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = cli("verify", "--store", store_path, "--json", *extra)
    return result.exit_code, json.loads(result.stdout), result.stderr


def _problems(report: dict[str, Any]) -> list[str]:
    return [f"{f['check']}: {f['subject']}: {f['problem']}" for f in report["findings"]]


def _db(store_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(store_path / "privca.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def test_whole_store_passes(store_path: Path, issued: list[dict[str, Any]], cli: Any, tmp_path: Path) -> None:
    before = snapshot(store_path, tmp_path / "out")
    code, report, _ = _verify(cli, store_path)
    assert code == 0, _problems(report)
    assert report["ok"] and report["checked"]["certificates"] == 3 and report["checked"]["keys"] == 2
    assert report["checked"]["files"] == 9 and report["checked"]["events"] == 4
    assert snapshot(store_path, tmp_path / "out") == before  # verify without --repair changes nothing
    # The peer agrees that what verify passed is sound.
    first = issued[0]
    assert run_tool("openssl", "verify", "-CAfile", first["chain_path"], first["cert_path"]).returncode == 0

    human = cli("verify", "--store", store_path)
    assert human.exit_code == 0 and "OK: the store is whole" in human.stdout


def test_edited_event_is_named(store_path: Path, issued: list[dict[str, Any]], cli: Any) -> None:
    with _db(store_path) as conn:
        conn.execute("UPDATE events SET details = replace(details, 'expressway-c', 'expressway-e') WHERE id = 3")
    code, report, stderr = _verify(cli, store_path)
    # The report is on stdout; with --json the error line on stderr is JSON too (docs/json.md).
    assert code == 13 and json.loads(stderr)["error"]["kind"] == "integrity" and stderr.count("\n") == 1
    assert _problems(report) == [f"events: event #3: was edited after it was recorded (issue {issued[1]['serial']} "
                                 f"at 2026-11-29T12:00:00Z)".replace("2026-11-29T12:00:00Z", _event_at(store_path, 3))]


def _event_at(store_path: Path, event_id: int) -> str:
    with _db(store_path) as conn:
        return str(conn.execute("SELECT at FROM events WHERE id = ?", (event_id,)).fetchone()[0])


def test_deleted_event_is_named(store_path: Path, issued: list[dict[str, Any]], cli: Any) -> None:
    with _db(store_path) as conn:
        conn.execute("DELETE FROM events WHERE id = 2")
    code, report, _ = _verify(cli, store_path)
    problems = _problems(report)
    assert code == 13
    assert "events: event #2: deleted from the events log" in problems
    assert "events: event #3: does not follow the event before it (an event was deleted or edited)" in problems
    assert f"events: certificate {issued[0]['serial']}: has no issue event" in " ".join(problems)


def test_deleting_the_last_event_is_caught_by_its_certificate(store_path: Path, issued: list[dict[str, Any]],
                                                              cli: Any) -> None:
    with _db(store_path) as conn:
        conn.execute("DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
    code, report, _ = _verify(cli, store_path)
    assert code == 13
    # Named three times: it has no issue event, no event records its row, and the seal its issue made vouches
    # for one more event than the log holds.
    assert [(f["check"], f["subject"]) for f in report["findings"]] == [
        ("events", f"certificate {issued[2]['serial']}"), ("rows", f"certificate {issued[2]['serial']}"),
        ("seals", "seal #2")]


def test_deleted_certificate_row_is_named(store_path: Path, issued: list[dict[str, Any]], cli: Any) -> None:
    with _db(store_path) as conn:
        conn.execute("DELETE FROM certificates WHERE serial = ltrim(?, '0')", (issued[1]["serial"],))
    code, report, _ = _verify(cli, store_path, "--skip", "files")
    assert code == 13
    assert _problems(report) == [f"events: certificate {issued[1]['serial']}: was issued (the events log says so) but "
                                 "its ledger row is gone: it can no longer be revoked; restore the ledger from a backup",
                                 f"rows: certificate {issued[1]['serial']}: recorded by event #3 but gone from the "
                                 "ledger: deleted behind privca's back; restore the ledger from a backup"]


def test_swapped_pem_and_fingerprint_are_caught(store_path: Path, issued: list[dict[str, Any]], cli: Any) -> None:
    with _db(store_path) as conn:
        other = conn.execute("SELECT pem FROM certificates WHERE serial = ltrim(?, '0')", (issued[1]["serial"],)).fetchone()[0]
        conn.execute("UPDATE certificates SET pem = ? WHERE serial = ltrim(?, '0')", (other, issued[0]["serial"]))
        conn.execute("UPDATE certificates SET fingerprint_sha256 = ? WHERE serial = ltrim(?, '0')", ("00" * 32, issued[2]["serial"]))
    code, report, _ = _verify(cli, store_path, "--skip", "files")
    problems = _problems(report)
    assert code == 13
    assert any(issued[0]["serial"] in p and "but the certificate has" in p for p in problems)
    assert f"certificates: certificate {issued[2]['serial']}: the stored SHA-256 fingerprint does not match the " \
           "certificate" in problems


def test_garbage_and_negative_serial_pems_are_reported_not_crashed_on(store_path: Path, issued: list[dict[str, Any]],
                                                                       cli: Any) -> None:
    corpus = Path(__file__).parent / "corpus" / "cert"
    negative = (corpus / "negative-serial.pem").read_text()
    with _db(store_path) as conn:
        conn.execute("UPDATE certificates SET pem = ? WHERE serial = ltrim(?, '0')", ("-----BEGIN CERTIFICATE-----\nAAAA\n"
                     "-----END CERTIFICATE-----\n", issued[0]["serial"]))
        conn.execute("UPDATE certificates SET pem = ? WHERE serial = ltrim(?, '0')", ("\x00\x1b[31m", issued[1]["serial"]))
        conn.execute("UPDATE certificates SET pem = ? WHERE serial = ltrim(?, '0')", (negative, issued[2]["serial"]))
    code, report, stderr = _verify(cli, store_path, "--skip", "files", "--skip", "rows")
    assert code == 13 and "Traceback" not in stderr
    by_serial = {f["subject"]: f["problem"] for f in report["findings"]}
    assert "does not parse" in by_serial[f"certificate {issued[0]['serial']}"]
    assert by_serial[f"certificate {issued[1]['serial']}"] == "the stored PEM is not a CERTIFICATE block"
    problems = " ".join(p for p in _problems(report) if issued[2]["serial"] in p)
    assert "not positive" in problems and "signature does not verify" in problems


def test_forged_certificate_is_caught_by_verify_and_by_openssl(store_path: Path, issued: list[dict[str, Any]],
                                                               cli: Any, tmp_path: Path) -> None:
    """A certificate with the issuing CA's name but signed by another key: our check and openssl's agree."""
    genuine = x509.load_pem_x509_certificate(Path(issued[0]["cert_path"]).read_bytes())
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(genuine.subject).issuer_name(genuine.issuer)
               .public_key(genuine.public_key()).serial_number(genuine.serial_number)
               .not_valid_before(genuine.not_valid_before_utc).not_valid_after(genuine.not_valid_after_utc))
    for ext in genuine.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    from cryptography.hazmat.primitives.serialization import Encoding

    forged = builder.sign(rogue_key, hashes.SHA256())
    forged_pem = forged.public_bytes(Encoding.PEM).decode()
    from privca.authority.ca import fingerprint

    with _db(store_path) as conn:
        conn.execute("UPDATE certificates SET pem = ?, fingerprint_sha256 = ? WHERE serial = ltrim(?, '0')",
                     (forged_pem, fingerprint(forged), issued[0]["serial"]))
    code, report, _ = _verify(cli, store_path, "--skip", "files")
    assert code == 13
    assert [f["problem"][:46] for f in report["findings"]] == ["the signature does not verify against its issu",
                                                                "fingerprint_sha256, pem changed since event #2"]
    (tmp_path / "forged.pem").write_text(forged_pem)
    peer = run_tool("openssl", "verify", "-CAfile", issued[0]["chain_path"], tmp_path / "forged.pem")
    assert peer.returncode != 0 and "verification failed" in peer.stderr


def test_crl_number_going_backwards(store_path: Path, store: Any, cli: Any, now: Any) -> None:
    ledger = store.ledger
    with ledger.write():
        for number in (1, 2):
            record_event(ledger, now, "crl", {"ca": "issuing-1", "crl_number": number})
        ledger._conn.execute("UPDATE cas SET crl_number = 2 WHERE name = 'issuing-1'")
    # CRL events written without the CA key carry no seal: the seals check would name them (test_tamper.py).
    assert _verify(cli, store_path, "--skip", "seals")[0] == 0
    with ledger.write():
        record_event(ledger, now + timedelta(hours=1), "crl", {"ca": "issuing-1", "crl_number": 2})
        ledger._conn.execute("UPDATE cas SET crl_number = 1 WHERE name = 'issuing-1'")
    code, report, _ = _verify(cli, store_path, "--skip", "seals")
    assert code == 13
    assert _problems(report) == ["crl: event #4: CRL number 2 of CA issuing-1 does not go above 2 (event #3)",
                                 "crl: CA issuing-1: CRL number 1 went backwards from 2 (event #4)"]


def test_keys_wrong_passphrase_and_mismatched_key(store_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch,
                                                  passphrase: Any) -> None:
    monkeypatch.setenv("PRIVCA_PASSPHRASE", "not the right passphrase")
    code, report, _ = _verify(cli, store_path)
    assert code == 13 and {f["check"] for f in report["findings"]} == {"keys"}
    assert "wrong passphrase" in report["findings"][0]["problem"]

    code, report, _ = _verify(cli, store_path, "--skip", "keys")  # no passphrase needed: everything else is fine
    assert code == 0 and report["skipped"] == ["keys"]

    monkeypatch.setenv("PRIVCA_PASSPHRASE", "correct horse battery staple")
    from privca.keys.material import encrypt_private_key

    key_file = store_path / "keys" / "issuing-1.key.pem"
    key_file.write_bytes(encrypt_private_key(ec.generate_private_key(ec.SECP384R1()), passphrase))
    code, report, _ = _verify(cli, store_path)
    assert code == 13
    assert _problems(report) == [f"keys: CA issuing-1: {key_file}: the key does not match the CA certificate"]


def test_no_passphrase_and_no_terminal_says_how(store_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVCA_PASSPHRASE")
    result = cli("verify", "--store", store_path)
    assert result.exit_code == 4 and "--skip keys" in result.stderr


def test_permissions_found_and_repaired(store_path: Path, cli: Any) -> None:
    os.chmod(store_path / "keys" / "root-1.key.pem", 0o644)
    os.chmod(store_path, 0o755)
    code, report, _ = _verify(cli, store_path, "--skip", "keys")
    assert code == 13
    assert sorted(f["subject"] for f in report["findings"]) == sorted([str(store_path),
                                                                        str(store_path / "keys" / "root-1.key.pem")])
    code, report, _ = _verify(cli, store_path, "--skip", "keys", "--repair")
    assert code == 0 and len(report["repaired"]) == 2
    assert (store_path / "keys" / "root-1.key.pem").stat().st_mode & 0o777 == 0o600


def test_changed_and_missing_files(store_path: Path, issued: list[dict[str, Any]], cli: Any) -> None:
    """Exported files get moved: a missing one is a note (exit 0); one that holds something else is a finding."""
    Path(issued[2]["fullchain_path"]).unlink()
    Path(issued[1]["cert_path"]).rename(Path(issued[1]["cert_path"]).with_suffix(".installed"))
    code, report, _ = _verify(cli, store_path)
    assert code == 0 and report["ok"] and report["findings"] == []
    assert sorted(n["subject"] for n in report["notes"]) == sorted([issued[1]["cert_path"],
                                                                     issued[2]["fullchain_path"]])
    assert f"privca show {issued[2]['serial']} --fullchain" in report["notes"][0]["note"] + report["notes"][1]["note"]
    human = cli("verify", "--store", store_path)
    assert human.exit_code == 0 and "Notes (not problems)" not in human.stderr
    assert issued[2]["fullchain_path"] in human.stdout and "OK: the store is whole" in human.stdout

    Path(issued[0]["cert_path"]).write_text(Path(issued[1]["cert_path"]).with_suffix(".installed").read_text())
    code, report, _ = _verify(cli, store_path)
    assert code == 13
    assert [(f["check"], f["subject"]) for f in report["findings"]] == [("files", issued[0]["cert_path"])]
    assert "does not hold what the ledger has" in report["findings"][0]["problem"]
    assert len(report["notes"]) == 2
    assert _verify(cli, store_path, "--skip", "files")[0] == 0


def test_reissue_to_the_same_file_is_not_a_finding(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path) -> None:
    csr = make_csr("same.csr")
    assert cli("issue", csr, "--out", tmp_path / "out", "--store", store_path).exit_code == 0
    assert cli("issue", csr, "--out", tmp_path / "out", "--store", store_path, "--force").exit_code == 0
    assert _verify(cli, store_path)[0] == 0  # the older certificate's file was replaced on purpose


def test_unknown_check_name(store_path: Path, cli: Any) -> None:
    result = cli("verify", "--store", store_path, "--skip", "everything")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --skip everything: no such check")


def test_events_of_other_commands_naming_serials_are_fine(store_path: Path, issued: list[dict[str, Any]], store: Any,
                                                          cli: Any, now: Any) -> None:
    """Revocation, renewal or rotation events name certificates and CAs by serial; verify accepts any event
    that names something in the ledger, and flags one that names something that is not."""
    ledger = store.ledger
    ca_serial = ledger._conn.execute("SELECT serial FROM cas WHERE role = 'issuing'").fetchone()[0]
    now = datetime.now(timezone.utc)  # the certificates were issued by the CLI, at the real time
    with ledger.write():
        record_event(ledger, now, "revoke", {"reason": "keyCompromise"}, serial=issued[0]["serial"])
        record_event(ledger, now, "rotate", {"ca": "issuing-1"}, serial=ca_serial)
    assert _verify(cli, store_path)[0] == 0
    with ledger.write():
        record_event(ledger, now, "revoke", {"reason": "superseded"}, serial="abad1dea")
    code, report, _ = _verify(cli, store_path)
    assert code == 13 and [f["subject"] for f in report["findings"]] == ["certificate abad1dea"]
