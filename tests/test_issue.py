"""Issuance through the library and the CLI: what is granted, what is recorded, what is written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import PASSPHRASE, ledger_counts, run_tool, shown_serial, snapshot

EKU = x509.ExtendedKeyUsage


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def eku_of(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(EKU).value)


def test_issue_expressway_c_from_cli(cli, store_path: Path, make_csr, tmp_path: Path) -> None:
    csr = make_csr("expc.csr")
    result = cli("issue", csr, "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    [record] = json.loads(result.stdout)["certificates"]
    for key in ("serial", "profile", "subject", "sans", "eku", "not_before", "not_after", "cert_path", "chain_path",
                "fullchain_path"):
        assert key in record
    assert record["profile"] == "expressway-c"
    assert record["eku"] == ["serverAuth", "clientAuth"]
    assert record["sans"] == [{"type": "dns", "value": name}
                              for name in ("expc1.example.com", "expc.example.com", "chatnode1.example.com")]
    assert record["status"] == "valid" and record["issuer"] == "issuing-1" and record["replaces"] is None
    assert record["serial"] == record["serial"].lower()
    # Files are written next to the CSR, as <stem>.pem, .chain.pem, .fullchain.pem.
    assert Path(record["cert_path"]) == (csr.parent / "expc.pem").absolute()
    cert = load(Path(record["cert_path"]))
    # Whole bytes, as OpenSSL shows the serial (so a grep for OpenSSL's serial finds it).
    openssl_serial = run_tool("openssl", "x509", "-in", record["cert_path"], "-noout", "-serial", check=True).stdout
    assert openssl_serial.strip() == f"serial={record['serial'].upper()}"
    assert eku_of(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    chain = x509.load_pem_x509_certificates(Path(record["chain_path"]).read_bytes())
    assert [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in chain] == [
        "Test UC Issuing CA 1", "Test UC Root CA"]
    full = x509.load_pem_x509_certificates(Path(record["fullchain_path"]).read_bytes())
    assert full[0] == cert and full[1:] == chain
    assert ledger_counts(store_path) == (1, 2)  # one certificate; events: init + issue


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("expressway-server", {ExtendedKeyUsageOID.SERVER_AUTH}),
        ("expressway-client", {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}),
        ("cube", {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}),
    ],
)
def test_profile_decides_eku_not_the_csr(store, passphrase, make_csr, now, profile, expected) -> None:
    from privca.authority.signer import issue

    [record] = [item.to_json() for item in issue(store, [make_csr()], passphrase, now=now, profile=profile)]
    assert eku_of(load(Path(record["cert_path"]))) == expected
    assert record["requested_eku"] == ["serverAuth", "clientAuth"]
    if len(expected) == 1:
        assert any("grants" in note for note in record["notes"])


def test_extensions_are_what_a_pki_engineer_expects(store, passphrase, make_csr, now) -> None:
    from privca.authority.signer import issue

    [record] = [item.to_json() for item in issue(store, [make_csr()], passphrase, now=now, profile="cucm")]
    cert = load(Path(record["cert_path"]))
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment and ku.value.data_encipherment
    assert not ku.value.key_cert_sign
    issuer = x509.load_pem_x509_certificates(Path(record["chain_path"]).read_bytes())[0]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.example.test/crl/issuing-1.crl"
    # Serial: positive, at least 64 bits of randomness (privca uses 159 bits).
    assert cert.serial_number > 0 and cert.serial_number.bit_length() > 64
    # Validity: the profile's days, counting notAfter as inclusive (RFC 5280).
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 730 * 86400 - 1


def test_ec_key_gets_no_key_encipherment(store, passphrase, make_csr, now, ec_key) -> None:
    from privca.authority.signer import issue

    [record] = [item.to_json() for item in issue(store, [make_csr(key=ec_key)], passphrase, now=now)]
    ku = load(Path(record["cert_path"])).extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment


def test_subject_keeps_only_profile_attributes(store, passphrase, make_csr, now) -> None:
    from privca.authority.signer import issue

    csr = make_csr(extra_subject=[x509.NameAttribute(NameOID.EMAIL_ADDRESS, "admin@example.com")])
    [record] = [item.to_json() for item in issue(store, [csr], passphrase, now=now)]
    subject = load(Path(record["cert_path"])).subject
    assert not subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "expc1.example.com"
    assert any("emailAddress" in note for note in record["notes"])


def test_der_csr_and_out_folder(cli, store_path: Path, make_csr, tmp_path: Path) -> None:
    csr = make_csr("der-node.csr", der=True)
    out = tmp_path / "certs" / "new"
    result = cli("issue", csr, "--out", out, "--store", store_path)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["der-node.chain.pem", "der-node.fullchain.pem", "der-node.pem"]


def test_days_option_and_its_bounds(cli, store_path: Path, make_csr) -> None:
    ok = cli("issue", make_csr(), "--days", "30", "--store", store_path, "--json")
    assert ok.exit_code == 0
    record = json.loads(ok.stdout)["certificates"][0]
    cert = load(Path(record["cert_path"]))
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 29
    too_long = cli("issue", make_csr(), "--days", "5000", "--store", store_path)
    assert too_long.exit_code != 0 and "allows 1 to 825 days" in too_long.stderr


def test_leaf_never_outlives_its_issuer(tmp_path: Path, passphrase, make_csr, now) -> None:
    from privca.authority.ca import init_ca
    from privca.errors import PolicyViolation
    from privca.authority.signer import issue
    from privca.ledger.store import Store

    short = Store(tmp_path / "short")
    init_ca(short, passphrase, root_cn="Short Root", issuing_cn="Short Issuing", key_type="ec:secp256r1",
            root_days=400, issuing_days=100, now=now)
    with pytest.raises(PolicyViolation, match="outlive the issuing CA"):
        issue(short, [make_csr()], passphrase, now=now)
    assert ledger_counts(short.path) == (0, 1)
    [issued] = issue(short, [make_csr()], passphrase, now=now, days=90)
    from privca.ledger import cas
    from privca.ledger.records import CARole

    issuing = cas.active(short.ledger, CARole.ISSUING)
    assert issuing is not None and issued.certificate.not_after < issuing.not_after


def test_batch_is_one_process_and_all_recorded(cli, store_path: Path, make_csr, tmp_path: Path) -> None:
    csrs = [make_csr(f"n{i}.csr", cn=f"n{i}.example.com", sans=[f"n{i}.example.com"]) for i in range(25)]
    result = cli("issue", *csrs, "--out", tmp_path / "out", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)["certificates"]
    assert len({r["serial"] for r in records}) == 25
    assert ledger_counts(store_path) == (25, 26)


def test_one_bad_csr_stops_the_batch_and_lists_every_problem(cli, store_path: Path, make_csr, tmp_path: Path) -> None:
    good = make_csr("good.csr")
    wildcard = make_csr("wild.csr", cn="expc1.example.com", sans=["expc1.example.com", "*.example.com"])
    asks_ca = make_csr("ca.csr", ca=True)
    out = tmp_path / "out"
    result = cli("issue", good, wildcard, asks_ca, "--out", out, "--store", store_path)
    assert result.exit_code != 0
    assert "wild.csr" in result.stderr and "wildcard" in result.stderr
    assert "ca.csr" in result.stderr and "CA:TRUE" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()
    assert ledger_counts(store_path) == (0, 1)


def test_list_and_show(cli, store_path: Path, make_csr) -> None:
    issued = json.loads(cli("issue", make_csr(), "--store", store_path, "--json").stdout)["certificates"][0]
    server = json.loads(cli("issue", make_csr(), "--profile", "expressway-server", "--store", store_path,
                            "--json").stdout)["certificates"][0]
    listed = json.loads(cli("list", "--store", store_path, "--json").stdout)["certificates"]
    assert {r["serial"] for r in listed} == {issued["serial"], server["serial"]}
    assert all(r["status"] == "valid" for r in listed)
    # list --json uses the same keys as issue --json (plus status and facts).
    assert set(issued) - {"requested_eku", "notes"} <= set(listed[0])
    only = json.loads(cli("list", "--profile", "expressway-server", "--store", store_path, "--json").stdout)["certificates"]
    assert [r["serial"] for r in only] == [server["serial"]]
    assert json.loads(cli("list", "--expiring-within", "30", "--store", store_path, "--json").stdout)["certificates"] == []
    soon = json.loads(cli("list", "--expiring-within", "800", "--store", store_path, "--json").stdout)["certificates"]
    assert len(soon) == 2
    csv_out = cli("list", "--csv", "--store", store_path).stdout.splitlines()
    assert csv_out[0].startswith("serial,status,profile") and len(csv_out) == 3
    shown = json.loads(cli("show", issued["serial"], "--store", store_path, "--json").stdout)
    assert shown["serial"] == issued["serial"] and shown["status"] == "valid"
    pem = cli("show", issued["serial"].upper(), "--pem", "--store", store_path).stdout
    assert pem == Path(issued["cert_path"]).read_text()
    missing = cli("show", "abc123", "--store", store_path)
    assert missing.exit_code != 0 and "no such certificate" in missing.stderr


def test_ledger_records_everything_about_a_certificate(store, passphrase, make_csr, now) -> None:
    from privca.authority.signer import issue

    [record] = [item.to_json() for item in issue(store, [make_csr()], passphrase, now=now)]
    conn = sqlite3.connect(store.ledger_path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM certificates").fetchone()
    assert row["serial"] == record["serial"].lstrip("0") and row["profile"] == "expressway-c"
    assert row["key_type"] == "rsa" and row["key_size"] == "2048"
    assert len(row["csr_sha256"]) == 64 and json.loads(row["requested_eku"]) == ["serverAuth", "clientAuth"]
    assert "@" in row["issued_by"] and row["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    event = conn.execute("SELECT * FROM events WHERE action = 'issue'").fetchone()
    assert event["serial"] == record["serial"].lstrip("0") and len(event["hash"]) == 64


def test_verify_commands_printed_after_issue_work(cli, store_path: Path, make_csr) -> None:
    result = cli("issue", make_csr("expc.csr"), "--store", store_path)
    line = [l for l in result.stderr.splitlines() if l.startswith("Verify: ")][0]
    command = line.removeprefix("Verify: ").split()
    assert run_tool(*command).returncode == 0


def test_ca_list_and_show(cli, store_path: Path, tmp_path: Path) -> None:
    listed = json.loads(cli("ca", "list", "--store", store_path, "--json").stdout)["cas"]
    assert [(ca["name"], ca["role"], ca["status"], ca["parent"]) for ca in listed] == [
        ("root-1", "root", "active", None), ("issuing-1", "issuing", "active", "root-1")]
    pem = cli("ca", "show", "issuing-1", "--pem", "--store", store_path).stdout
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert shown_serial(cert.serial_number) == listed[1]["serial"]
    # The PEM is the CA certificate itself: openssl reads it and finds the fingerprint the listing shows.
    (tmp_path / "issuing.pem").write_text(pem)
    shown = run_tool("openssl", "x509", "-in", tmp_path / "issuing.pem", "-noout", "-fingerprint", "-sha256").stdout
    assert shown.strip().split("=")[1].replace(":", "").lower() == listed[1]["fingerprint_sha256"]
    missing = cli("ca", "show", "issuing-9", "--store", store_path)
    assert missing.exit_code != 0 and "issuing-9" in missing.stderr and "root-1" in missing.stderr


def test_show_fullchain_writes_the_file_again_from_the_ledger(cli, store_path: Path, make_csr) -> None:
    [record] = json.loads(cli("issue", make_csr("expc.csr"), "--store", store_path, "--json").stdout)["certificates"]
    again = cli("show", record["serial"], "--fullchain", "--store", store_path).stdout
    assert again == Path(record["fullchain_path"]).read_text()
    chain = cli("show", record["serial"], "--chain", "--store", store_path).stdout
    assert chain == Path(record["chain_path"]).read_text()


def test_dry_run_shows_what_would_be_granted_and_changes_nothing(cli, store_path: Path, make_csr, monkeypatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("PRIVCA_PASSPHRASE")  # a dry run needs no passphrase
    csr = make_csr("expc.csr")
    before = snapshot(store_path, csr.parent)
    result = cli("issue", csr, "--profile", "expressway-server", "--dry-run", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    [preview] = json.loads(result.stdout)["certificates"]
    assert preview["requested_eku"] == ["serverAuth", "clientAuth"] and preview["eku"] == ["serverAuth"]
    assert preview["issuer"] == "issuing-1" and preview["sans"][0] == {"type": "dns", "value": "expc1.example.com"}
    assert snapshot(store_path, csr.parent) == before
    # Negative control: a CSR the real run would refuse is refused by the dry run too, the same way.
    bad = make_csr("wild.csr", sans=["expc1.example.com", "*.example.com"])
    refused = cli("issue", bad, "--dry-run", "--store", store_path)
    assert refused.exit_code != 0 and "wildcard" in refused.stderr


@pytest.mark.parametrize("digest, named", [("sha1", "SHA-1"), ("md5", "MD5")])
def test_a_csr_signed_with_a_broken_hash_is_refused_for_that_reason(cli, store_path: Path, tmp_path: Path,
                                                                     digest: str, named: str) -> None:
    """OpenSSL makes the CSRs, as an administrator would; the refusal names the hash and the SHA-256 way."""
    key = tmp_path / "k.pem"
    run_tool("openssl", "genrsa", "-out", key, "2048", check=True)

    def openssl_csr(name: str, hash_name: str) -> Path:
        path = tmp_path / name
        run_tool("openssl", "req", "-new", f"-{hash_name}", "-key", key, "-subj", "/CN=expc1.example.com",
                 "-addext", "subjectAltName=DNS:expc1.example.com", "-out", path, check=True)
        return path

    weak = openssl_csr("weak.csr", digest)
    before = snapshot(store_path, tmp_path)
    refused = cli("issue", weak, "--store", store_path)
    assert refused.exit_code != 0 and named in refused.stderr and "-sha256" in refused.stderr
    assert "tampered" not in refused.stderr and "Traceback" not in refused.stderr
    assert snapshot(store_path, tmp_path) == before
    # Negative control: the same key and names signed with SHA-256 are issued.
    good = cli("issue", openssl_csr("good.csr", "sha256"), "--store", store_path)
    assert good.exit_code == 0, good.stderr


def test_a_tampered_csr_is_still_called_tampered(cli, store_path: Path, make_csr) -> None:
    csr = make_csr("expc.csr", der=True)
    data = bytearray(csr.read_bytes())
    data[-5] ^= 0x01  # inside the signature
    csr.write_bytes(bytes(data))
    refused = cli("issue", csr, "--store", store_path)
    assert refused.exit_code != 0 and "tampered" in refused.stderr and "SHA-1" not in refused.stderr


def test_expressway_takes_p521_csrs_as_its_csr_generator_makes_them(cli, store_path: Path, tmp_path: Path) -> None:
    """Expressway X15.4+ offers ECDSA P-521 in Generate CSR; OpenSSL makes one the same way here."""
    key = tmp_path / "p521.key"
    run_tool("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", key, check=True)
    csr = tmp_path / "expc.csr"
    run_tool("openssl", "req", "-new", "-sha256", "-key", key, "-subj", "/CN=expc1.example.com", "-addext",
             "subjectAltName=DNS:expc1.example.com", "-out", csr, check=True)
    for profile in ("expressway-c", "expressway-client"):
        result = cli("issue", csr, "--profile", profile, "--out", tmp_path / profile, "--store", store_path, "--json")
        assert result.exit_code == 0, result.stderr
        [record] = json.loads(result.stdout)["certificates"]
        for purpose in ("sslserver", "sslclient"):  # both EKUs, also for the X15.5 client store (TAC 225693)
            verified = run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", record["chain_path"],
                                record["cert_path"])
            assert verified.returncode == 0, verified.stdout + verified.stderr
        text = run_tool("openssl", "x509", "-in", record["cert_path"], "-noout", "-text").stdout
        assert "NIST CURVE: P-521" in text or "secp521r1" in text
    # Negative control: Unified CM's profile takes RSA only, and refuses the same CSR.
    refused = cli("issue", csr, "--profile", "cucm", "--out", tmp_path / "cucm", "--store", store_path)
    assert refused.exit_code != 0 and "ec:secp521r1" in refused.stderr


@pytest.mark.parametrize("days", ["826", "4000", "0"])
def test_dry_run_applies_days_as_the_real_run_does(cli, store_path: Path, make_csr, monkeypatch, days: str) -> None:
    csr = make_csr("expc.csr")
    real = cli("issue", csr, "--days", days, "--store", store_path)
    assert real.exit_code != 0
    monkeypatch.delenv("PRIVCA_PASSPHRASE")
    dry = cli("issue", csr, "--days", days, "--dry-run", "--store", store_path)
    assert dry.exit_code == real.exit_code and "would be issued" not in dry.stdout
    assert dry.stderr == real.stderr and f"--days {days}" in dry.stderr


def test_dry_run_shows_the_days_asked_for_and_refuses_outliving_the_ca(cli, store_path: Path, make_csr,
                                                                      monkeypatch) -> None:
    monkeypatch.delenv("PRIVCA_PASSPHRASE")
    csr = make_csr("expc.csr")
    [preview] = json.loads(cli("issue", csr, "--days", "30", "--dry-run", "--json",
                               "--store", store_path).stdout)["certificates"]
    assert preview["validity_days"] == 30
    # Negative control: a lifetime within the profile but beyond the issuing CA is refused by both runs alike.
    monkeypatch.setenv("PRIVCA_PASSPHRASE", PASSPHRASE)
    rotated = cli("rotate", "intermediate", "--days", "100", "--store", store_path)
    assert rotated.exit_code == 0, rotated.stderr
    real = cli("issue", csr, "--store", store_path)
    monkeypatch.delenv("PRIVCA_PASSPHRASE")
    dry = cli("issue", csr, "--dry-run", "--store", store_path)
    assert real.exit_code == dry.exit_code != 0 and "would outlive the issuing CA" in dry.stderr
    assert dry.stderr == real.stderr
