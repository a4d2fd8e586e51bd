"""Trust bundles (privca export), checked with the tools the peers themselves use: keytool (Java, as the Tomcat
on Unified CM and Unity Connection), openssl verify / pkcs7 / pkcs12, and IOS-style parsing of the CUBE snippet.

Two kinds of store are used:
- the session CA from conftest (real keys), to issue an Expressway-C certificate and verify it against a bundle;
- fixed CA certificates from tests/data/export/cas.json, loaded into a ledger without keys, so that the rendered
  instructions are stable and can be compared with the golden files in tests/golden/. Those are regenerated
  only on purpose: PRIVCA_UPDATE_GOLDEN=1 pytest tests/test_export.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, run_tool, snapshot
from privca.ledger.cas import all_cas
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "data" / "export" / "cas.json"
GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("PRIVCA_UPDATE_GOLDEN") == "1"
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", re.S)
ALL_PEERS = ("cucm", "unity", "cms", "cube", "expressway", "pem", "der", "p7b", "pkcs12")


# --- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def keytool() -> str:
    path = shutil.which("keytool")
    if path is None:  # required, never skipped: scripts/test installs a Java runtime
        pytest.fail("keytool is missing; run scripts/test (installs default-jre-headless)")
    return path


@pytest.fixture(scope="session")
def fixture_cas() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def basic_rows(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    """A freshly initialised CA: root-1 and issuing-1, both active."""
    rows = {row["name"]: row for row in fixture["rotation"]}
    return [rows["root-1"], {**rows["issuing-1"], "status": "active"}]


def ledger_row(row: dict[str, Any]) -> "CA":
    """A CA record for a fixture certificate (what privca.authority.ca records)."""
    from privca.ledger.records import CA, CARole, CAStatus

    cert = x509.load_pem_x509_certificate(row["pem"].encode())
    return CA(
        id=row["id"], name=row["name"], role=CARole(row["role"]), generation=row["generation"],
        parent_id=row["parent_id"], subject=cert.subject.rfc4514_string(), serial=format(cert.serial_number, "x"),
        key_type=row["key_type"], key_ref=f"keys/{row['name']}.key.pem", not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, status=CAStatus(row["status"]), fingerprint_sha256=sha256_hex(cert),
        crl_url=row["crl_url"], ocsp_url=None, created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), pem=row["pem"],
    )


def make_fixture_store(path: Path, rows: list[dict[str, Any]]) -> Path:
    from privca.ledger import cas, certificates, events
    from privca.ledger.records import CertificateStatus, IssuedCertificate
    from privca.ledger.store import Store

    store = Store(path)
    ledger = store.create()
    with ledger.write():
        for row in rows:
            ca = cas.insert(ledger, ledger_row(row))
            assert ca.id == row["id"]
            if ca.status == "retired":
                # A retired CA stays in the bundles while a certificate it signed is in service: record one.
                certificates.insert_many(ledger, [IssuedCertificate(
                    id=0, serial=f"{ca.id:x}0001", issuer_id=ca.id, profile="expressway-c",
                    subject="CN=in-service.example.com", sans=(), eku=(), key_type="rsa", key_size="2048",
                    not_before=ca.not_before, not_after=ca.not_after, status=CertificateStatus.VALID,
                    fingerprint_sha256="0" * 64, issued_by="fixture", issued_at=ca.created_at, pem=ca.pem,
                )])
        # Every change to a ledger is recorded by an event (which carries the digests of the rows it made).
        events.record(ledger, datetime(2026, 1, 1, tzinfo=timezone.utc), "fixture", {"cas": len(rows)})
    store.close()
    return path


@pytest.fixture(scope="session")
def scenario_stores(tmp_path_factory: pytest.TempPathFactory, fixture_cas: dict[str, Any]) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("export-stores")
    return {"basic": make_fixture_store(base / "basic", basic_rows(fixture_cas)),
            "rotation": make_fixture_store(base / "rotation", fixture_cas["rotation"])}


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, scenario_stores: dict[str, Path]) -> dict[str, Path]:
    """``privca export all`` of each fixture scenario, made once (read-only for the tests)."""
    from privca.exporters import export
    from privca.ledger.store import Store

    base = tmp_path_factory.mktemp("exported")
    folders = {}
    for scenario, path in scenario_stores.items():
        store = Store(path)
        export(store, "all", base / scenario, now=NOW)
        store.close()
        folders[scenario] = base / scenario
    return folders


# --- helpers ----------------------------------------------------------------------------------------------------

def sha256_hex(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def colon(hex_digest: str) -> str:
    return ":".join(hex_digest[i:i + 2] for i in range(0, len(hex_digest), 2)).upper()


def trusted_fixture(fixture: dict[str, Any], scenario: str) -> dict[str, x509.Certificate]:
    """The CAs that must be in every product bundle, computed here independently of privca: the rows that are
    active or retired and unexpired at NOW."""
    rows = basic_rows(fixture) if scenario == "basic" else fixture["rotation"]
    certs = {row["name"]: x509.load_pem_x509_certificate(row["pem"].encode()) for row in rows
             if row["status"] in ("active", "retired")}
    return {name: cert for name, cert in certs.items() if cert.not_valid_after_utc > NOW}


def pem_certs(path: Path) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(block.encode()) for block in PEM_BLOCK.findall(path.read_text())]


def instruction_entries(path: Path) -> dict[str, dict[str, str]]:
    """The per-CA facts an INSTRUCTIONS.md shows: ledger name -> subject, SHA-256, SHA-1."""
    entries = {}
    for match in re.finditer(r"^### .*?\((?P<kind>[^,]+), (?P<name>[^)]+)\)\n\n(?P<body>(?:- .*\n)+)",
                             path.read_text(), re.M):
        facts = dict(re.findall(r"^- ([^:]+): `?(.*?)`?$", match["body"], re.M))
        entries[match["name"]] = {"subject": facts["Subject"], "sha256": facts["SHA-256 fingerprint"],
                                  "sha1": facts["SHA-1 fingerprint"]}
    return entries


def keytool_entries(keytool: str, store: Path, password: str = "changeit") -> dict[str, dict[str, str]]:
    """keytool -list -v of a PKCS#12 store: alias -> entry type, owner, SHA1, SHA256."""
    result = run_tool(keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", store, "-storepass", password)
    assert result.returncode == 0, result.stdout + result.stderr
    entries = {}
    for chunk in result.stdout.split("Alias name: ")[1:]:
        alias = chunk.splitlines()[0].strip()
        fields = dict(re.findall(r"^\s*(Entry type|Owner|SHA1|SHA256): (.*)$", chunk, re.M))
        entries[alias] = fields
    assert f"Your keystore contains {len(entries)} entr" in result.stdout
    return entries


def ios_fp(colon_hex: str) -> str:
    digits = colon_hex.replace(":", "")
    return " ".join(digits[i:i + 8] for i in range(0, len(digits), 8))


# --- Unified CM and Unity Connection: keytool imports every PEM --------------------------------------------------

@pytest.mark.parametrize("peer", ["cucm", "unity"])
def test_keytool_imports_every_unified_os_pem_with_the_fingerprints_the_instructions_show(
        peer: str, keytool: str, exported: dict[str, Path], fixture_cas: dict[str, Any], tmp_path: Path) -> None:
    folder = exported["rotation"] / peer
    pems = sorted(folder.glob("*.pem"))
    expected = trusted_fixture(fixture_cas, "rotation")
    assert {p.name.split("_")[0] for p in pems} == set(expected)  # one file per trusted CA, named after it
    store = tmp_path / "tomcat-trust.p12"
    for pem in pems:  # what Unified CM's Java-based Tomcat does with an uploaded trust certificate
        result = run_tool(keytool, "-importcert", "-noprompt", "-alias", pem.stem.lower(), "-file", pem,
                          "-keystore", store, "-storetype", "PKCS12", "-storepass", "changeit")
        assert result.returncode == 0, result.stdout + result.stderr
    listed = keytool_entries(keytool, store)
    shown = instruction_entries(folder / "INSTRUCTIONS.md")
    assert set(shown) == set(expected)
    for pem in pems:
        name = pem.name.split("_")[0]
        entry, facts = listed[pem.stem.lower()], shown[name]
        assert entry["Entry type"] == "trustedCertEntry"
        assert entry["SHA256"] == facts["sha256"] == colon(sha256_hex(expected[name]))
        assert entry["SHA1"] == facts["sha1"]
        # The instructions write names in privca's one style (RFC 4514); Java (and Cisco Unified OS) print the same
        # name with a space after each comma.
        assert entry["Owner"] == facts["subject"].replace(",", ", ")
    # negative control: the expired and the revoked CA are in the ledger but in no bundle
    gone = {row["name"]: row for row in fixture_cas["rotation"] if row["name"] not in expected}
    assert set(gone) == {"issuing-0", "issuing-x"}
    fingerprints = {entry["SHA256"] for entry in listed.values()}
    for row in gone.values():
        assert colon(sha256_hex(x509.load_pem_x509_certificate(row["pem"].encode()))) not in fingerprints


@pytest.mark.parametrize("peer,p7b,inform", [("cucm", "privca-ca-chain.p7b", "PEM"),
                                             ("unity", "privca-ca-chain.p7b", "PEM"),
                                             ("p7b", "privca-ca-bundle.p7b", "DER")])
def test_openssl_reads_the_pkcs7_files(peer: str, p7b: str, inform: str, exported: dict[str, Path],
                                       fixture_cas: dict[str, Any], tmp_path: Path) -> None:
    path = exported["rotation"] / peer / p7b
    result = run_tool("openssl", "pkcs7", "-inform", inform, "-in", path, "-print_certs", "-out", tmp_path / "o.pem")
    assert result.returncode == 0, result.stderr
    found = {sha256_hex(cert) for cert in pem_certs(tmp_path / "o.pem")}
    assert found == {sha256_hex(cert) for cert in trusted_fixture(fixture_cas, "rotation").values()}
    # negative control: read with the other encoding, openssl refuses the file
    other = "DER" if inform == "PEM" else "PEM"
    assert run_tool("openssl", "pkcs7", "-inform", other, "-in", path, "-print_certs", "-noout").returncode != 0


# --- Meeting Server: the bundle validates an Expressway-C certificate from this CA, and only from this CA ----------

def lookalike_leaf(tmp_path: Path, store_path: Path) -> Path:
    """A CA with the very same names as the store's CA but other keys, and an Expressway-C leaf under it."""
    from privca.ledger.store import Store

    store = Store(store_path)
    names = {ca.role.value: ca.certificate.subject for ca in all_cas(store.ledger)}
    store.close()
    root_key, issuing_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=300)

    def cert(subject, issuer, key, signer, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH]),
                                            critical=False)
        return builder.sign(signer, hashes.SHA256())

    issuing = cert(names["issuing"], names["root"], issuing_key, root_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expc1.example.com")]), names["issuing"],
                leaf_key, issuing_key, False, san="expc1.example.com")
    path = tmp_path / "lookalike.pem"
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, issuing)))
    return path


def test_cms_bundle_verifies_an_expressway_c_client_certificate_and_rejects_another_ca(
        cli: Any, store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("expc1.csr")
    issued = cli("issue", csr, "--profile", "expressway-c", "--store", store_path, "--out", tmp_path / "certs")
    assert issued.exit_code == 0, issued.stderr
    result = cli("export", "cms", "--out", tmp_path / "cms", "--store", store_path)
    assert result.exit_code == 0, result.stderr
    bundle = tmp_path / "cms" / "privca-ca-bundle.crt"
    leaf = tmp_path / "certs" / "expc1.pem"
    at: tuple[str, ...] = ()  # the session CA was made yesterday and the leaf now: both valid for openssl
    for purpose in ("sslclient", "sslserver"):
        verify = run_tool("openssl", "verify", *at, "-purpose", purpose, "-CAfile", bundle, leaf)
        assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify.stdout + verify.stderr
    # negative control: same CA names, other keys; the leaf is sent with its intermediate, as a TLS peer would
    lookalike = lookalike_leaf(tmp_path, store_path)
    refused = run_tool("openssl", "verify", *at, "-purpose", "sslclient", "-CAfile", bundle, "-untrusted",
                       lookalike, lookalike)
    assert refused.returncode != 0
    assert "error" in (refused.stdout + refused.stderr).lower()
    # Meeting Server bundle shape: intermediates, then the root, one trailing newline
    certs = pem_certs(bundle)
    assert [c.subject == c.issuer for c in certs] == [False, True]
    assert bundle.read_text().endswith("-----END CERTIFICATE-----\n")


def test_cms_bundle_during_a_rotation_lists_every_intermediate_before_the_roots(exported: dict[str, Path]) -> None:
    certs = pem_certs(exported["rotation"] / "cms" / "privca-ca-bundle.crt")
    self_signed = [c.subject == c.issuer for c in certs]
    assert self_signed == sorted(self_signed) and self_signed.count(True) == 2 and len(certs) == 4


# --- CUBE: the IOS-XE snippet -----------------------------------------------------------------------------------

def parse_cube(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Trustpoint definitions (name -> sub-commands) and authenticate blocks (name, SHA1 comment, PEM)."""
    trustpoints: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("crypto pki trustpoint "):
            current = line.split()[-1]
            trustpoints[current] = []
        elif line.startswith(" ") and current:
            trustpoints[current].append(line.strip())
        else:
            current = None
    blocks = re.findall(r"^!   Fingerprint SHA1: ([0-9A-F ]+)\ncrypto pki authenticate (\S+)\n"
                        r"(-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n)quit$", text, re.M | re.S)
    return trustpoints, [(name, sha1, pem) for sha1, name, pem in blocks]


@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_cube_snippet_puts_each_ca_under_its_own_trustpoint(scenario: str, exported: dict[str, Path],
                                                            fixture_cas: dict[str, Any], tmp_path: Path) -> None:
    text = (exported[scenario] / "cube" / "cube-trustpoints.cfg").read_text()
    trustpoints, blocks = parse_cube(text)
    expected = trusted_fixture(fixture_cas, scenario)
    rows = {row["name"]: row for row in fixture_cas["rotation"]}
    assert set(trustpoints) == {f"PRIVCA-{name.upper()}" for name in expected}
    assert [name for name, _, _ in blocks] == list(trustpoints)  # every trustpoint authenticated, same order
    assert text.index("crypto pki authenticate") > max(text.index(f"trustpoint {tp}\n") for tp in trustpoints)
    certs = {}
    for name, sha1_comment, pem in blocks:
        ledger_name = name.removeprefix("PRIVCA-").lower()
        path = tmp_path / f"{name}.pem"
        path.write_text(pem)
        parsed = run_tool("openssl", "x509", "-in", path, "-noout", "-fingerprint", "-sha1")  # a real parser
        assert parsed.returncode == 0, parsed.stderr
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert sha256_hex(cert) == sha256_hex(expected[ledger_name])  # the right CA under this trustpoint
        assert ios_fp(parsed.stdout.strip().split("=")[1]) == sha1_comment.strip()
        certs[name] = cert
        settings = trustpoints[name]
        assert "enrollment terminal" in settings
        wanted = "crl" if rows[ledger_name]["crl_url"] else "none"
        assert f"revocation-check {wanted}" in settings
        chain = [s for s in settings if s.startswith("chain-validation")]
        if cert.subject == cert.issuer:
            assert chain == []
        else:
            assert len(chain) == 1 and chain[0].startswith("chain-validation continue ")
            parent = chain[0].split()[-1]
            assert list(trustpoints).index(parent) < list(trustpoints).index(name)
            cert.verify_directly_issued_by(certs[parent])  # the parent trustpoint really signed it
    if scenario == "rotation":  # both revocation branches are exercised
        assert {"revocation-check crl", "revocation-check none"} <= {s for v in trustpoints.values() for s in v}


@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_cube_enroll_snippet_chains_to_the_active_issuing_trustpoint(scenario: str, exported: dict[str, Path]) -> None:
    """The automatic variant: SCEP to privca's RA under the cube profile, renewal with a new key, and a chain that
    continues at the trustpoint of the active issuing CA (negative control: not at a retired or unknown one)."""
    folder = exported[scenario] / "cube"
    trustpoints, blocks = parse_cube((folder / "cube-trustpoints.cfg").read_text())
    enroll, _ = parse_cube((folder / "cube-enroll.cfg").read_text())
    commands = enroll["<CUBE-IDENTITY>"]
    for wanted in ("enrollment mode ra", "enrollment url http://<PRIVCA-HOST:PORT>/scep/cube",
                   "password <CHALLENGE>", "subject-alt-name <CUBE-FQDN>", "auto-enroll 70 regenerate"):
        assert wanted in commands, (wanted, commands)
    continues = [c.split()[-1] for c in commands if c.startswith("chain-validation continue ")]
    assert len(continues) == 1 and continues[0] in trustpoints
    # CRL checking as the issuing CA's own trustpoint has it: crl where the CA publishes one, none otherwise.
    assert [c for c in commands if c.startswith("revocation-check")] == [
        c for c in trustpoints[continues[0]] if c.startswith("revocation-check")]
    issuing = [name for name, sha1, _ in blocks if f"accept only if it is {sha1}" in
               (folder / "cube-enroll.cfg").read_text()]
    assert issuing == [continues[0]]


@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_cube_est_snippet_uses_an_est_enrollment_profile_and_the_same_trustpoint_shape(
        scenario: str, exported: dict[str, Path]) -> None:
    """The EST variant: an enrollment profile with method-est, an https URL and the one-time password as the HTTP
    Basic password; the trustpoint refers to it and chains like the SCEP one (negative control: no SCEP RA mode
    and no challengePassword in the trustpoint, and the Cisco sources are named)."""
    folder = exported[scenario] / "cube"
    text = (folder / "cube-enroll-est.cfg").read_text()
    trustpoints, _ = parse_cube((folder / "cube-trustpoints.cfg").read_text())
    profile = re.search(r"^crypto pki profile enrollment PRIVCA-EST\n((?: .*\n)*)", text, re.M)
    assert profile is not None
    lines = [line.strip() for line in profile.group(1).splitlines() if not line.strip().startswith("!")]
    assert lines == ["method-est", "enrollment url https://<PRIVCA-HOST:HTTPS-PORT>",
                     "enrollment http username cube password 0 <CHALLENGE>", "exit"]
    est, _ = parse_cube(text)
    commands = est["<CUBE-IDENTITY>"]
    assert "enrollment profile PRIVCA-EST" in commands and "auto-enroll 70 regenerate" in commands
    assert not [c for c in commands if c.startswith(("enrollment mode", "enrollment url", "password"))]
    scep, _ = parse_cube((folder / "cube-enroll.cfg").read_text())
    same = ("subject-name", "subject-alt-name", "rsakeypair", "revocation-check", "chain-validation")
    assert [c for c in commands if c.startswith(same)] == [c for c in scep["<CUBE-IDENTITY>"] if c.startswith(same)]
    continues = [c.split()[-1] for c in commands if c.startswith("chain-validation continue ")]
    assert len(continues) == 1 and continues[0] in trustpoints
    for source in ("Enrollment over Secure Transport (EST) On-Prem Deployment Guide",
                   "Configuring Certificate Enrollment for a PKI", "genielibs"):
        assert source in text


def test_cube_tls_profile_attaches_tls_to_sip(exported: dict[str, Path]) -> None:
    text = (exported["basic"] / "cube" / "cube-tls-profile.cfg").read_text()
    assert re.search(r"^voice class tls-profile 1\n trustpoint <CUBE-IDENTITY>\n", text, re.M)
    assert re.search(r"^sip-ua\n(?: .*\n)* crypto signaling default tls-profile 1\n", text, re.M)


# --- Expressway: exactly the CA certificates ---------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_expressway_file_holds_exactly_the_ca_certificates(scenario: str, exported: dict[str, Path],
                                                           fixture_cas: dict[str, Any]) -> None:
    path = exported[scenario] / "expressway" / "privca-trusted-ca.pem"
    text = path.read_text()
    assert "".join(PEM_BLOCK.findall(text)) == text  # nothing but certificate blocks: no key, no stray text
    certs = pem_certs(path)
    assert sorted(sha256_hex(c) for c in certs) == sorted(sha256_hex(c) for c in
                                                           trusted_fixture(fixture_cas, scenario).values())
    for cert in certs:
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Expressway stops at the first CN match: no two CAs may share a common name
    names = [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certs]
    assert len(set(names)) == len(names)


# --- Java trust store --------------------------------------------------------------------------------------------

def test_pkcs12_trust_store_lists_every_ca_as_trusted_in_keytool(keytool: str, exported: dict[str, Path],
                                                                 fixture_cas: dict[str, Any], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    store = exported["rotation"] / "pkcs12" / "privca-truststore.p12"
    expected = trusted_fixture(fixture_cas, "rotation")
    listed = keytool_entries(keytool, store)
    assert {entry["SHA256"] for entry in listed.values()} == {colon(sha256_hex(c)) for c in expected.values()}
    assert {entry["Entry type"] for entry in listed.values()} == {"trustedCertEntry"}
    assert all(alias.split("_")[0] in expected for alias in listed)
    # OpenSSL checks the MAC and shows Java's trusted-usage attribute on each certificate
    info = run_tool("openssl", "pkcs12", "-in", store, "-info", "-nokeys", "-passin", "pass:changeit")
    assert info.returncode == 0, info.stderr
    assert info.stdout.count("2.16.840.1.113894.746875.1.1") == len(expected)
    loaded = pkcs12.load_pkcs12(store.read_bytes(), b"changeit")
    aliases = [c.friendly_name.decode().split("_")[0] for c in loaded.additional_certs]
    assert aliases == ["root-1", "root-2", "issuing-1", "issuing-2"] and sorted(listed) == sorted(
        c.friendly_name.decode() for c in loaded.additional_certs)
    # negative controls: a wrong password fails the integrity check ...
    wrong = run_tool(keytool, "-list", "-storetype", "PKCS12", "-keystore", store, "-storepass", "wrong-pass")
    assert wrong.returncode != 0
    # ... and certificates without the trusted-usage attribute are invisible to Java
    plain = tmp_path / "plain.p12"
    plain.write_bytes(pkcs12.serialize_key_and_certificates(None, None, None, list(expected.values()),
                                                            serialization.NoEncryption()))
    assert keytool_entries(keytool, plain, password="") == {}


def test_truststore_writer_matches_rfc7292_key_derivation() -> None:
    """The MAC key derivation against an independent implementation: cryptography reads a store with any
    password only when the derived key is right."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    from privca.exporters.truststore import java_truststore

    root = x509.load_pem_x509_certificate(json.loads(FIXTURE.read_text())["rotation"][0]["pem"].encode())
    for password in ("changeit", "pässwörd-with-ümlauts", "x" * 70):
        data = java_truststore([("a", root.public_bytes(serialization.Encoding.DER))], password)
        assert pkcs12.load_pkcs12(data, password.encode()).additional_certs[0].certificate == root
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(data, b"not-" + password.encode())


# --- DER ----------------------------------------------------------------------------------------------------------

def test_der_files_are_one_ca_each(exported: dict[str, Path], fixture_cas: dict[str, Any]) -> None:
    folder = exported["rotation"] / "der"
    found = {}
    for path in sorted(folder.glob("*.cer")):
        result = run_tool("openssl", "x509", "-inform", "DER", "-in", path, "-noout", "-subject")
        assert result.returncode == 0, result.stderr
        found[path.name.split("_")[0]] = sha256_hex(x509.load_der_x509_certificate(path.read_bytes()))
    assert found == {name: sha256_hex(c) for name, c in trusted_fixture(fixture_cas, "rotation").items()}


# --- generations, order and cross-certificates -------------------------------------------------------------------

def test_rotation_keeps_active_and_retired_generations_parents_first(scenario_stores: dict[str, Path]) -> None:
    from privca.exporters import trust_context
    from privca.ledger.store import Store

    store = Store(scenario_stores["rotation"])
    ctx = trust_context(store, NOW)
    store.close()
    assert [ca.name for ca in ctx.cas] == ["root-1", "root-2", "issuing-1", "issuing-2"]
    assert {ca.name: ca.status for ca in ctx.cas}["issuing-1"] == "retired"
    assert ctx.rotating and [ca.name for ca in ctx.leaf_first] == ["issuing-2", "issuing-1", "root-2", "root-1"]
    assert {ca.name: ca.parent for ca in ctx.cas} == {"root-1": None, "root-2": None, "issuing-1": "root-1",
                                                      "issuing-2": "root-2"}
    # once issuing-1 has expired it leaves every bundle; its root stays while it is valid
    later = trust_context(Store(scenario_stores["rotation"]), datetime(2036, 1, 1, tzinfo=timezone.utc))
    assert [ca.name for ca in later.cas] == ["root-1", "root-2", "issuing-2"]


def test_cross_certificate_goes_to_generic_bundles_only(fixture_cas: dict[str, Any]) -> None:
    from privca.exporters import build_context, bundle_files

    from privca.ledger.records import CrossCertificate

    cas = [ledger_row(row) for row in fixture_cas["rotation"]]
    fixture = fixture_cas["cross"]
    cert = x509.load_pem_x509_certificate(fixture["pem"].encode())
    # The fixture's cross-certificate carries root-2's name and key, signed by root-1 (its parent).
    signed_for = next(ca.id for ca in cas if ca.name == "root-2")
    ctx = build_context(cas, NOW, [CrossCertificate(
        id=fixture["id"], issuer_ca_id=fixture["parent_id"], subject_ca_id=signed_for, serial=format(cert.serial_number, "x"),
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, fingerprint_sha256=sha256_hex(cert), created_at=NOW, pem=fixture["pem"])])
    cross = next(ca for ca in ctx.cas if ca.name == "cross-root-2-by-root-1")
    assert cross.cross and not cross.self_signed and cross.parent == "root-1" and cross.generation == 2
    assert "cross-root-2-by-root-1" not in [ca.name for ca in ctx.anchors]
    cucm = bundle_files(ctx, "cucm")
    assert not any(name.startswith("cross-root-2-by-root-1") for name in cucm)
    assert "`cross-root-2-by-root-1`" in cucm["INSTRUCTIONS.md"].decode()  # the administrator is told why
    assert cross.pem in bundle_files(ctx, "pem")["privca-ca-bundle.pem"].decode()
    assert cross.pem not in bundle_files(ctx, "expressway")["privca-trusted-ca.pem"].decode()


def test_templates_refuse_a_missing_value(scenario_stores: dict[str, Path]) -> None:
    import jinja2

    from privca.exporters import PEERS, trust_context
    from privca.exporters.render import render
    from privca.ledger.store import Store

    ctx = trust_context(Store(scenario_stores["basic"]), NOW)
    with pytest.raises(jinja2.UndefinedError, match="bundle"):
        render("cms/INSTRUCTIONS.md.j2", ctx=ctx, peer=PEERS["cms"])  # no bundle file name given


# --- determinism, overwriting and errors ------------------------------------------------------------------------

def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_ledger_same_bytes(scenario_stores: dict[str, Path], exported: dict[str, Path], tmp_path: Path) -> None:
    from privca.exporters import export
    from privca.ledger.store import Store

    store = Store(scenario_stores["rotation"])
    export(store, "all", tmp_path / "again", now=NOW + timedelta(hours=5))
    for peer in ALL_PEERS:
        export(store, peer, tmp_path / peer, now=NOW)
    store.close()
    first = folder_bytes(exported["rotation"])
    assert first == folder_bytes(tmp_path / "again")
    for peer in ALL_PEERS:  # a single-peer export is the same as its folder in export all
        assert folder_bytes(tmp_path / peer) == {k.split("/", 1)[1]: v for k, v in first.items()
                                                 if k.startswith(peer + "/")}
    assert set(folder_bytes(exported["rotation"])) == {"README.md", "README.html", ".privca-bundle"} | {
        k for k in first if "/" in k}


def test_cli_export_writes_the_bundle_and_json(cli: Any, store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundles" / "expressway"
    result = cli("export", "expressway", "--out", out, "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["peer"] == "expressway" and [f["path"] for f in data["files"]] == [
        str(out / name) for name in ("INSTRUCTIONS.html", "INSTRUCTIONS.md", "privca-trusted-ca.pem")]
    for item in data["files"]:
        assert hashlib.sha256((out / item["path"]).read_bytes()).hexdigest() == item["sha256"]
    assert [ca["kind"] for ca in data["cas"]] == ["root", "intermediate"]
    human = cli("export", "all", "--out", tmp_path / "all", "--store", store_path)
    assert human.exit_code == 0 and "Next: follow" in human.stdout
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted([".privca-bundle", "README.html",
                                                                          "README.md", *ALL_PEERS])


def test_never_overwrites_without_force(cli: Any, store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cucm"
    assert cli("export", "cucm", "--out", out, "--store", store_path).exit_code == 0
    (out / "INSTRUCTIONS.md").write_text("edited by hand\n")
    (out / "stale-root.pem").write_text("left over\n")
    before = snapshot(tmp_path)
    refused = cli("export", "cucm", "--out", out, "--store", store_path)
    assert refused.exit_code == 9
    assert refused.stderr == f"Error: {out}: already exists and is not empty; use --force to replace it\n"
    assert snapshot(tmp_path) == before
    forced = cli("export", "cucm", "--out", out, "--store", store_path, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert not (out / "stale-root.pem").exists() and "edited" not in (out / "INSTRUCTIONS.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cucm", "store"]  # no temporary folders left


def test_force_never_replaces_a_folder_privca_did_not_write(cli: Any, store_path: Path, tmp_path: Path) -> None:
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious\n")
    before = snapshot(tmp_path)
    result = cli("export", "cucm", "--out", mine, "--store", store_path, "--force")
    assert result.exit_code == 9 and "privca did not export" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert snapshot(tmp_path) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("export", "cms", "--out", empty, "--store", store_path).exit_code == 0  # empty is fine


@pytest.mark.parametrize("case", ["bad-peer", "no-ca", "nothing-trusted", "parent-is-a-file", "symlink",
                                  "out-is-a-file", "working-folder", "unwritable-place"])
def test_errors_are_one_line_and_change_nothing(case: str, cli: Any, store_path: Path, tmp_path: Path,
                                                fixture_cas: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    peer, store, out = "cucm", store_path, tmp_path / "out" / "cucm"
    if case == "bad-peer":
        peer = "callmanager"
    elif case == "no-ca":
        store = tmp_path / "empty-store"
    elif case == "nothing-trusted":
        rows = [{**row, "status": "revoked"} for row in basic_rows(fixture_cas)]
        store = make_fixture_store(tmp_path / "revoked-store", rows)
    elif case == "parent-is-a-file":
        (tmp_path / "out").write_text("a file\n")
    elif case == "symlink":
        (tmp_path / "real").mkdir()
        (tmp_path / "out").mkdir()
        out.symlink_to(tmp_path / "real")
    elif case == "out-is-a-file":
        (tmp_path / "out").mkdir()
        out.write_text("a file\n")
    elif case == "unwritable-place":  # refused by the kernel even to root, unlike a chmod 555 folder
        out = Path("/proc/privca-export-test/cucm")
    elif case == "working-folder":  # --out . --force in a folder with the user's own files
        monkeypatch.chdir(tmp_path)
        out = Path(".")
    before = snapshot(tmp_path)
    result = cli("export", peer, "--out", out, "--store", store, *(["--force"] if case == "working-folder" else []))
    codes = {"bad-peer": 2, "no-ca": 3, "nothing-trusted": 10}
    assert result.exit_code == codes.get(case, 9), result.stderr
    stderr = result.stderr
    if case == "nothing-trusted":  # a fixture store is written without CA keys, so it carries no seal: said first
        warning, _, stderr = stderr.partition("\n")
        assert warning.startswith("Warning: the ledger carries no seal yet")
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and result.stdout == ""
    assert snapshot(tmp_path) == before


def test_a_failure_half_way_leaves_the_previous_export(cli: Any, store_path: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.errors import OutputError
    from privca.exporters import writer

    out = tmp_path / "all"
    assert cli("export", "all", "--out", out, "--store", store_path).exit_code == 0
    before = snapshot(tmp_path)
    real, calls = writer.atomic_write, {"n": 0}

    def failing(path: Path, data: bytes, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 7:
            raise OutputError(f"{path}: cannot write (No space left on device)")
        real(path, data, **kwargs)

    monkeypatch.setattr(writer, "atomic_write", failing)
    result = cli("export", "all", "--out", out, "--store", store_path, "--force")
    assert result.exit_code == 9 and "No space left" in result.stderr
    assert snapshot(tmp_path) == before  # the earlier export is intact and no temporary folder is left


# --- golden files -------------------------------------------------------------------------------------------------

def rendered_text_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.suffix in (".md", ".cfg")}


@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_rendered_files_match_the_golden_files(scenario: str, exported: dict[str, Path]) -> None:
    """Every instruction and configuration file, byte for byte. When a template changes on purpose, regenerate
    with PRIVCA_UPDATE_GOLDEN=1 and review the diff."""
    rendered = rendered_text_files(exported[scenario])
    golden = GOLDEN / scenario
    if UPDATE_GOLDEN:
        shutil.rmtree(golden, ignore_errors=True)
        for relative, text in rendered.items():
            (golden / relative).parent.mkdir(parents=True, exist_ok=True)
            (golden / relative).write_text(text)
    expected = rendered_text_files(golden)
    assert sorted(expected) == sorted(rendered), "files added or removed: regenerate the goldens on purpose"
    for relative, text in rendered.items():
        assert text == expected[relative], f"{relative} differs from tests/golden/{scenario}/{relative}"
    assert {path.split("/")[0] for path in rendered if "/" in path} == set(ALL_PEERS)


# --- packaging, help and docs -------------------------------------------------------------------------------------

def test_help_and_docs_cover_every_peer(cli: Any) -> None:
    from privca.cli.export_cmd import PEER_HELP
    from privca.exporters import peer_names

    assert PEER_HELP == ", ".join(peer_names()) + ", or all"
    assert list(peer_names()) == list(ALL_PEERS)
    help_text = cli("export", "--help").stdout
    assert "Example" in help_text and "privca export all --out bundles" in help_text
    index = (ROOT / "docs" / "index.md").read_text()
    for peer in peer_names():
        page = ROOT / "docs" / "peers" / f"{peer}.md"
        assert page.is_file(), page
        assert f"peers/{peer}.md" in index


def test_wheel_ships_the_templates(tmp_path: Path, scenario_stores: dict[str, Path]) -> None:
    """Build the wheel and render a bundle from it, away from the source tree."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("privca-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for peer in ALL_PEERS:
        assert f"privca/exporters/templates/{peer}/INSTRUCTIONS.md.j2" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    script = ("import sys, privca; from datetime import datetime, timezone; from pathlib import Path; "
              "from privca.exporters import export; from privca.ledger.store import Store; "
              "assert privca.__file__.startswith(sys.argv[1]), privca.__file__; "
              "export(Store(sys.argv[2]), 'cube', Path(sys.argv[3]), now=datetime(2026, 11, 29, tzinfo=timezone.utc))")
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, sys.argv[1]); {script}",
                          tmp_path / "site", scenario_stores["basic"], tmp_path / "cube"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "cube" / "cube-trustpoints.cfg").read_text().startswith("! privca")


@pytest.mark.parametrize("scenario", ["basic", "rotation"])
def test_cube_identity_trustpoint_checks_revocation_as_its_issuing_ca(scenario: str, exported: dict[str, Path],
                                                                       fixture_cas: dict[str, Any]) -> None:
    """CUBE tries every trustpoint on a peer's certificate, so CUBE's own must not skip the CRL its CA publishes."""
    text = (exported[scenario] / "cube" / "INSTRUCTIONS.md").read_text()
    identity = re.search(r"^crypto pki trustpoint <CUBE-IDENTITY>\n((?: .*\n)+)", text, re.M)
    assert identity is not None
    settings = [line.strip() for line in identity[1].splitlines()]
    [chain] = [s for s in settings if s.startswith("chain-validation continue ")]
    issuing_name = chain.split()[-1].removeprefix("PRIVCA-").lower()
    issuing = next(row for row in fixture_cas["rotation"] if row["name"] == issuing_name)
    wanted = "crl" if issuing["crl_url"] else "none"
    assert f"revocation-check {wanted}" in settings
    # The verify step uses commands and outputs a Cisco document shows, and checks from the peer's side too.
    assert "Trustpoint CA certificate: Available" not in text and "show crypto pki trustpoints status" not in text
    assert "show crypto pki certificates PRIVCA-" in text and "Verify return code: 0 (ok)" in text
def test_cms_rotation_replaces_the_bundle_and_the_runbook_says_so(cli: Any, store_path: Path, make_csr: Any,
                                                                   tmp_path: Path) -> None:
    """After a rotation the new export alone trusts old and new leaves: it replaces the bundle on the server."""
    old_leaf = json.loads(cli("issue", make_csr("old.csr"), "--store", store_path,
                              "--json").stdout)["certificates"][0]["cert_path"]
    assert cli("export", "cms", "--out", tmp_path / "before", "--store", store_path).exit_code == 0
    assert cli("rotate", "intermediate", "--store", store_path).exit_code == 0
    new_leaf = json.loads(cli("issue", make_csr("new.csr", folder=tmp_path / "n"), "--store", store_path,
                              "--json").stdout)["certificates"][0]["cert_path"]
    assert cli("export", "cms", "--out", tmp_path / "after", "--store", store_path).exit_code == 0
    after = tmp_path / "after" / "privca-ca-bundle.crt"
    for leaf in (old_leaf, new_leaf):
        verified = run_tool("openssl", "verify", "-purpose", "sslclient", "-CAfile", after, leaf)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    # Negative control: the bundle from before the rotation does not trust the new leaf.
    stale = run_tool("openssl", "verify", "-CAfile", tmp_path / "before" / "privca-ca-bundle.crt", new_leaf)
    assert stale.returncode != 0
    instructions = (tmp_path / "after" / "INSTRUCTIONS.md").read_text()
    runbook = (Path(__file__).parent.parent / "docs" / "rotation.md").read_text()
    [cms_row] = [line for line in runbook.splitlines() if line.startswith("| 3 | Meeting Server")]
    assert "**replace**" in instructions and "replace each bundle file" in cms_row
    assert "append the new CAs" not in cms_row and "do not append" in instructions
