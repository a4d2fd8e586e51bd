"""Renewal: same names and profile, new serial, a new key from a new CSR or the key on record, ledger links, and
revoking the old certificate as superseded. Certificates are checked with openssl verify."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import NOW, build_csr, ledger_counts, run_tool, snapshot
from privca.ledger.cas import active as active_ca
from privca.ledger.events import all_events

ATTIME = str(int((NOW + timedelta(hours=1)).timestamp()))


@pytest.fixture(autouse=True)
def _pinned_cli_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read the clock once, in the CLI; pin it so dates and expiry windows match the fixtures."""
    monkeypatch.setattr("privca.cli.rotate_cmd.now", lambda: NOW)
    monkeypatch.setattr("privca.cli.ledger_cmd.now", lambda: NOW)


def write_csr(folder: Path, name: str, key: Any, **kwargs: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(build_csr(key, **kwargs).public_bytes(Encoding.PEM))
    return path


def load(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def ledger_row(store_path: Path, serial: str) -> sqlite3.Row:
    conn = sqlite3.connect(store_path / "privca.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM certificates WHERE serial = ltrim(?, '0')", (serial,)).fetchone()
    finally:
        conn.close()


def openssl_verify(record: dict[str, Any], purpose: str = "sslserver") -> Any:
    return run_tool("openssl", "verify", "-attime", ATTIME, "-purpose", purpose, "-CAfile", record["chain_path"],
                    record["cert_path"])


def names_and_extensions(cert: x509.Certificate) -> tuple[Any, ...]:
    ext = cert.extensions
    return (cert.subject, ext.get_extension_for_class(x509.SubjectAlternativeName).value,
            ext.get_extension_for_class(x509.ExtendedKeyUsage).value, ext.get_extension_for_class(x509.KeyUsage).value)


@pytest.fixture
def issued(store: Any, passphrase: Any, tmp_path: Path, rsa2048_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """One Expressway-C certificate, issued from a CSR into tmp/certs."""
    from privca.authority.signer import issue

    csr = write_csr(tmp_path / "certs", "expc.csr", rsa2048_key)
    return issue(store, [csr], passphrase, now=NOW)[0].to_json()


def test_renew_with_a_new_csr_keeps_names_and_profile_with_a_new_key(store: Any, store_path: Path, passphrase: Any,
                                                                     issued: dict[str, Any], tmp_path: Path) -> None:
    from privca.lifecycle.renewal import renew

    new_key = ec.generate_private_key(ec.SECP256R1())
    # The device's new CSR lists the same names in another order and case: still the same names.
    csr = write_csr(tmp_path / "2027", "expc.csr", new_key, cn="expc1.example.com",
                    sans=["EXPC.example.com", "chatnode1.example.com", "expc1.example.com"])
    later = NOW + timedelta(days=300)
    record = renew(store, issued["serial"], passphrase, now=later, csr_path=csr)

    assert record["replaces"] == issued["serial"] and record["serial"] != issued["serial"]
    assert record["key_source"] == "new-csr" and record["old_status"] == "valid"
    assert record["profile"] == "expressway-c" and record["eku"] == ["serverAuth", "clientAuth"]
    assert record["cert_path"] == str((tmp_path / "2027" / f"expc-{later:%Y%m%d}.pem").absolute())
    old_cert, new_cert = load(issued["cert_path"]), load(record["cert_path"])
    assert names_and_extensions(new_cert)[0] == names_and_extensions(old_cert)[0]
    assert names_and_extensions(new_cert)[1] == names_and_extensions(old_cert)[1]  # the old order, as issued
    assert new_cert.public_key() == new_key.public_key() != old_cert.public_key()
    assert new_cert.not_valid_before_utc > old_cert.not_valid_before_utc

    row, old_row = ledger_row(store_path, record["serial"]), ledger_row(store_path, issued["serial"])
    assert row["replaces"] == issued["serial"].lstrip("0") and row["csr_der"] is not None
    assert old_row["status"] == "valid"
    event = [e for e in all_events(store.ledger) if e.action == "renew"][-1]
    assert event.serial == record["serial"].lstrip("0") and event.details["replaces"] == issued["serial"].lstrip("0")


def test_renew_with_the_csr_on_record_certifies_the_same_key_again(store: Any, store_path: Path, passphrase: Any,
                                                                   issued: dict[str, Any]) -> None:
    from privca.lifecycle.renewal import renew

    record = renew(store, issued["serial"], passphrase, now=NOW + timedelta(days=370))
    assert record["key_source"] == "csr-on-record"
    old_cert, new_cert = load(issued["cert_path"]), load(record["cert_path"])
    assert new_cert.public_key() == old_cert.public_key()
    assert names_and_extensions(new_cert) == names_and_extensions(old_cert)
    assert new_cert.serial_number != old_cert.serial_number
    # Written next to the old certificate, under a dated name that does not stack dates on renewal.
    assert Path(record["cert_path"]).parent == Path(issued["cert_path"]).parent
    assert Path(record["cert_path"]).name == f"expc-{NOW + timedelta(days=370):%Y%m%d}.pem"
    old_csr = ledger_row(store_path, issued["serial"])["csr_sha256"]
    assert old_csr is not None and ledger_row(store_path, record["serial"])["csr_sha256"] == old_csr


@pytest.mark.parametrize("purpose", ["sslserver", "sslclient"])
def test_renewed_certificate_verifies_with_openssl(store: Any, passphrase: Any, issued: dict[str, Any],
                                                   purpose: str) -> None:
    from privca.lifecycle.renewal import renew

    record = renew(store, issued["serial"], passphrase, now=NOW)
    checked = openssl_verify(record, purpose)
    assert checked.returncode == 0 and ": OK" in checked.stdout, checked.stdout + checked.stderr
    # Negative control: the renewed leaf does not verify against another CA's chain.
    other = run_tool("openssl", "verify", "-attime", ATTIME, "-purpose", purpose, "-CAfile", record["cert_path"],
                     record["cert_path"])
    assert other.returncode != 0


def test_renew_a_certificate_recorded_without_its_csr_uses_the_certificate_key(store: Any, store_path: Path,
                                                                               passphrase: Any,
                                                                               issued: dict[str, Any]) -> None:
    from privca.lifecycle.renewal import renew

    store.ledger._conn.execute("UPDATE certificates SET csr_der = NULL WHERE serial = ltrim(?, '0')", (issued["serial"],))
    record = renew(store, issued["serial"], passphrase, now=NOW)
    assert record["key_source"] == "certificate"
    assert load(record["cert_path"]).public_key() == load(issued["cert_path"]).public_key()
    assert ledger_row(store_path, record["serial"])["csr_sha256"] is None


def test_revoke_old_marks_the_old_certificate_revoked_as_superseded(store: Any, store_path: Path, cli: Any,
                                                                    issued: dict[str, Any], tmp_path: Path) -> None:
    result = cli("renew", issued["serial"], "--revoke-old", "--out", tmp_path / "renewed", "--store", store_path,
                 "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["old_status"] == "revoked"
    old_row = ledger_row(store_path, issued["serial"])
    assert (old_row["status"], old_row["revocation_reason"]) == ("revoked", "superseded")
    assert old_row["revoked_at"] is not None
    conn = sqlite3.connect(store_path / "privca.db")
    revoke = conn.execute("SELECT details FROM events WHERE action = 'revoke' AND serial = ltrim(?, '0')",
                          (issued["serial"],)).fetchone()
    conn.close()
    assert json.loads(revoke[0])["reason"] == "superseded"
    assert json.loads(revoke[0])["replaced_by"] == record["serial"].lstrip("0")
    # privca list shows it among the revoked certificates, which is what the CRL is built from.
    listed = cli("list", "--status", "revoked", "--json", "--store", store_path)
    assert [entry["serial"] for entry in json.loads(listed.stdout)["certificates"]] == [issued["serial"]]
    assert json.loads(listed.stdout)["certificates"][0]["revocation_reason"] == "superseded"


def test_revoke_old_puts_the_old_serial_on_the_next_crl(store_path: Path, cli: Any, issued: dict[str, Any],
                                                      tmp_path: Path) -> None:
    renewed = json.loads(cli("renew", issued["serial"], "--revoke-old", "--out", tmp_path / "renewed", "--store",
                             store_path, "--json").stdout)
    status = json.loads(cli("status", "--json", "--store", store_path).stdout)
    assert any(ca["pending_changes"] for ca in status["crls"])  # the revocation is waiting for a CRL
    assert cli("crl", "--out", tmp_path / "crl", "--store", store_path).exit_code == 0
    crl = x509.load_der_x509_crl((tmp_path / "crl" / "issuing-1.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(issued["serial"], 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded
    assert crl.get_revoked_certificate_by_serial_number(int(renewed["serial"], 16)) is None
    # openssl agrees: the old certificate is revoked (error 23), the renewed one passes (negative control).
    chain = Path(issued["chain_path"])
    old = run_tool("openssl", "verify", "-crl_check", "-CRLfile", tmp_path / "crl" / "issuing-1.crl.pem", "-CAfile",
                   chain, issued["cert_path"])
    assert old.returncode != 0 and "certificate revoked" in old.stdout + old.stderr
    new = run_tool("openssl", "verify", "-crl_check", "-CRLfile", tmp_path / "crl" / "issuing-1.crl.pem", "-CAfile",
                   chain, renewed["cert_path"])
    assert new.returncode == 0, new.stdout + new.stderr


def test_renew_under_another_profile_keeps_the_names(store: Any, passphrase: Any, issued: dict[str, Any],
                                                     tmp_path: Path) -> None:
    from privca.lifecycle.renewal import renew

    record = renew(store, issued["serial"], passphrase, now=NOW, profile="expressway-server", out_dir=tmp_path / "o")
    assert record["profile"] == "expressway-server" and record["eku"] == ["serverAuth"]
    old_cert, new_cert = load(issued["cert_path"]), load(record["cert_path"])
    assert names_and_extensions(new_cert)[:2] == names_and_extensions(old_cert)[:2]
    assert openssl_verify(record, "sslserver").returncode == 0
    assert openssl_verify(record, "sslclient").returncode != 0  # serverAuth only, as the profile says


def test_renewal_after_rotating_the_intermediate_comes_from_the_new_issuer(store: Any, passphrase: Any,
                                                                         issued: dict[str, Any]) -> None:
    from privca.lifecycle.renewal import renew
    from privca.authority.rotation import rotate_intermediate

    rotate_intermediate(store, passphrase, now=NOW, key_type="ec:secp256r1")
    record = renew(store, issued["serial"], passphrase, now=NOW)
    issuer = active_ca(store.ledger, "issuing")
    assert issuer is not None and load(record["cert_path"]).issuer.rfc4514_string() == issuer.subject
    assert openssl_verify(record).returncode == 0


@pytest.mark.parametrize("case, code, message", [
    ("other-names", 7, "names differ from certificate"),
    ("bad-csr", 6, "not a valid PEM or DER certificate signing request"),
    ("weak-key", 7, "RSA-1024"),
    ("unknown-serial", 8, "no such certificate in the ledger"),
    ("not-hex", 2, "must be hexadecimal"),
    ("unknown-profile", 5, "profile 'nope': unknown"),
    ("file-in-the-way", 9, "already exists; use --force"),
    ("both-modes", 2, "name one SERIAL, or use --expiring-within"),
    ("days-too-long", 2, "--days 9999: profile expressway-c allows 1 to 825 days"),
])
def test_renew_refuses_bad_input_and_changes_nothing(store_path: Path, cli: Any, issued: dict[str, Any],
                                                     tmp_path: Path, case: str, code: int, message: str) -> None:
    serial = issued["serial"]
    folder = tmp_path / "new"
    args: list[Any] = [serial]
    if case == "other-names":
        args += ["--csr", write_csr(folder, "x.csr", ec.generate_private_key(ec.SECP256R1()), cn="other.example.com",
                                    sans=["other.example.com"])]
    elif case == "bad-csr":
        folder.mkdir()
        (folder / "x.csr").write_text("not a CSR")
        args += ["--csr", folder / "x.csr"]
    elif case == "weak-key":
        args += ["--csr", write_csr(folder, "x.csr", rsa.generate_private_key(65537, 1024))]
    elif case == "unknown-serial":
        args = ["abcdef"]
    elif case == "not-hex":
        args = ["xyz"]
    elif case == "unknown-profile":
        args += ["--profile", "nope"]
    elif case == "file-in-the-way":
        args += ["--out", folder]
        folder.mkdir()
        (folder / f"expc-{NOW:%Y%m%d}.chain.pem").write_text("keep me")
    elif case == "both-modes":
        args += ["--expiring-within", "30"]
    elif case == "days-too-long":
        args += ["--days", "9999"]
    before = snapshot(store_path, tmp_path)
    result = cli("renew", *args, "--store", store_path)
    assert result.exit_code == code, result.stderr
    assert result.stderr.startswith("Error: ") and message in result.stderr and result.stderr.count("\n") == 1
    assert snapshot(store_path, tmp_path) == before


def test_renew_refuses_revoked_and_already_renewed_certificates(store: Any, passphrase: Any,
                                                                issued: dict[str, Any]) -> None:
    from privca.errors import PolicyViolation, UsageError
    from privca.lifecycle.renewal import renew

    first = renew(store, issued["serial"], passphrase, now=NOW)
    with pytest.raises(UsageError, match=f"already renewed by {first['serial']}; renew that one instead"):
        renew(store, issued["serial"], passphrase, now=NOW)
    second = renew(store, first["serial"], passphrase, now=NOW, revoke_old=True, force=True)
    assert second["replaces"] == first["serial"]
    with pytest.raises(PolicyViolation, match=r"revoked \(superseded\)"):
        renew(store, first["serial"], passphrase, now=NOW)


def test_a_failed_renewal_leaves_the_old_certificate_and_the_ledger_alone(store: Any, store_path: Path,
                                                                          passphrase: Any, issued: dict[str, Any],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import privca.revocation.revoke
    from privca.errors import RevocationError
    from privca.lifecycle.renewal import renew

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RevocationError("refused")

    before = snapshot(store_path, Path(issued["cert_path"]).parent)
    monkeypatch.setattr(privca.revocation.revoke, "mark_revoked", refuse)
    with pytest.raises(RevocationError):
        renew(store, issued["serial"], passphrase, now=NOW, revoke_old=True)
    store.close()
    assert snapshot(store_path, Path(issued["cert_path"]).parent) == before


# --- renew --expiring-within ----------------------------------------------------------------------------------


@pytest.fixture
def estate(store: Any, store_path: Path, passphrase: Any, tmp_path: Path,
           rsa2048_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """Three certificates: one expiring soon (RSA-2048 key), one expiring soon that will need a new CSR, one later."""
    from privca.authority.signer import issue

    folder = tmp_path / "certs"
    soon = issue(store, [write_csr(folder, "expc1.csr", rsa2048_key)], passphrase, now=NOW, days=20)[0].to_json()
    cube_key = rsa.generate_private_key(65537, 2048)
    cube = issue(store, [write_csr(folder, "cube.csr", cube_key, cn="cube1.example.com", sans=["cube1.example.com"])],
                 passphrase, now=NOW, days=25, profile="cube")[0].to_json()
    later = issue(store, [write_csr(folder, "expc2.csr", ec.generate_private_key(ec.SECP256R1()),
                                    cn="expc2.example.com", sans=["expc2.example.com"])], passphrase, now=NOW)[0].to_json()
    # The CUBE profile has since been tightened to 3072-bit keys: its certificate needs a new CSR.
    shipped = Path(__file__).resolve().parents[1] / "profiles" / "cube.toml"
    text = shipped.read_text()
    assert '"rsa:2048", ' in text
    # A store profile in place of a shipped one says so (replaces_shipped), or privca refuses it.
    (store_path / "profiles" / "cube.toml").write_text("replaces_shipped = true\n" + text.replace('"rsa:2048", ', ""))
    return {"soon": soon, "cube": cube, "later": later, "folder": folder}


def test_expiring_within_dry_run_lists_and_changes_nothing(store_path: Path, cli: Any, estate: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVCA_PASSPHRASE")  # a dry run never needs the CA key
    before = snapshot(store_path, estate["folder"])
    result = cli("renew", "--expiring-within", "30", "--dry-run", "--json", "--store", store_path)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["serial"], r["key_source"]) for r in data["renewed"]] == [(estate["soon"]["serial"], "csr-on-record")]
    assert [r["serial"] for r in data["needs_csr"]] == [estate["cube"]["serial"]]
    assert "key type rsa:2048 is not allowed by profile cube" in data["needs_csr"][0]["problems"][0]
    assert snapshot(store_path, estate["folder"]) == before


def test_expiring_within_renews_what_it_can_and_lists_what_needs_a_new_csr(store_path: Path, cli: Any,
                                                                           estate: dict[str, Any]) -> None:
    certificates, events = ledger_counts(store_path)
    result = cli("renew", "--expiring-within", "30", "--store", store_path)
    assert result.exit_code == 0, result.stderr
    assert f"Renewed {estate['soon']['serial']} -> " in result.stdout
    assert "need a new CSR from the device" in result.stderr and estate["cube"]["serial"] in result.stdout
    assert ledger_counts(store_path) == (certificates + 1, events + 1)
    conn = sqlite3.connect(store_path / "privca.db")
    replaced = conn.execute("SELECT replaces, cert_path FROM certificates WHERE replaces IS NOT NULL").fetchall()
    conn.close()
    assert len(replaced) == 1 and replaced[0][0] == estate["soon"]["serial"].lstrip("0")
    assert Path(replaced[0][1]).parent == estate["folder"]
    checked = run_tool("openssl", "verify", "-attime", ATTIME, "-purpose", "sslclient", "-CAfile",
                       str(Path(replaced[0][1]).with_name(Path(replaced[0][1]).name.replace(".pem", ".chain.pem"))),
                       replaced[0][1])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Run again: the renewed certificate is not renewed twice.
    again = cli("renew", "--expiring-within", "30", "--json", "--store", store_path)
    assert json.loads(again.stdout)["renewed"] == []
    assert ledger_counts(store_path) == (certificates + 1, events + 1)


def test_expiring_within_with_revoke_old_and_a_new_csr_for_the_rest(store: Any, store_path: Path, passphrase: Any,
                                                                    estate: dict[str, Any], tmp_path: Path) -> None:
    from privca.lifecycle.renewal import renew, renew_expiring

    result = renew_expiring(store, 30, passphrase, now=NOW, revoke_old=True, out_dir=tmp_path / "renewed")
    assert [r["replaces"] for r in result["renewed"]] == [estate["soon"]["serial"]]
    assert ledger_row(store_path, estate["soon"]["serial"])["revocation_reason"] == "superseded"
    assert ledger_row(store_path, estate["later"]["serial"])["status"] == "valid"
    # The device makes a new 3072-bit key; its CSR renews the CUBE certificate.
    csr = write_csr(tmp_path / "cube", "cube.csr", rsa.generate_private_key(65537, 3072), cn="cube1.example.com",
                    sans=["cube1.example.com"])
    record = renew(store, estate["cube"]["serial"], passphrase, now=NOW, csr_path=csr)
    assert record["profile"] == "cube" and record["key_source"] == "new-csr"
    assert renew_expiring(store, 30, passphrase, now=NOW) == {"renewed": [], "needs_csr": []}


def test_expiring_within_is_all_or_nothing(store_path: Path, cli: Any, estate: dict[str, Any],
                                           store: Any, passphrase: Any) -> None:
    from privca.authority.signer import issue

    issue(store, [write_csr(estate["folder"], "expc3.csr", ec.generate_private_key(ec.SECP256R1()),
                            cn="expc3.example.com", sans=["expc3.example.com"])], passphrase, now=NOW, days=10)
    (estate["folder"] / f"expc3-{NOW:%Y%m%d}.pem").write_text("in the way")
    store.close()
    before = snapshot(store_path, estate["folder"])
    result = cli("renew", "--expiring-within", "30", "--store", store_path)
    assert result.exit_code == 9 and "expc3-" in result.stderr and "nothing issued" in result.stderr
    assert snapshot(store_path, estate["folder"]) == before


def test_show_links_a_renewal_both_ways(cli: Any, store_path: Path, issued: dict[str, Any]) -> None:
    shown = json.loads(cli("show", issued["serial"], "--store", store_path, "--json").stdout)
    # Negative control: before a renewal there is no link either way.
    assert shown["replaces"] is None and shown.get("replaced_by") is None
    renewed = json.loads(cli("renew", issued["serial"], "--store", store_path, "--json").stdout)
    old = json.loads(cli("show", issued["serial"], "--store", store_path, "--json").stdout)
    new = json.loads(cli("show", renewed["serial"], "--store", store_path, "--json").stdout)
    assert old["replaced_by"] == renewed["serial"] and old["replaces"] is None
    assert new["replaces"] == issued["serial"] and new.get("replaced_by") is None
    text = cli("show", issued["serial"], "--store", store_path).stdout
    assert any(line.split() == ["replaced_by", renewed["serial"]] for line in text.splitlines()), text
