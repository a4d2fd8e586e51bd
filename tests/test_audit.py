"""privca audit: the fixture estate's exact verdicts, the timeline as data, every input format, live endpoints
(a real ``openssl s_server``), and bad targets reported per target without a traceback."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from conftest import NOW, snapshot
from estate import CLIENT, EXPECTED, SERVER, Estate, build_estate, leaf, make_cert, name

from privca.inspect.audit import AuditReport, audit
from privca.errors import UsageError
from privca.inspect.publictrust import PublicRoots, load_trust_data, mozilla_label

DATA_FILE = Path(__file__).resolve().parent.parent / "privca" / "inspect" / "data" / "public_trust.toml"


@pytest.fixture(scope="session")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    return build_estate(tmp_path_factory.mktemp("audit") / "estate", NOW)


@pytest.fixture(scope="session")
def public(estate: Estate) -> PublicRoots:
    """Mozilla's store from certifi plus the fixture's 'public' root, as --public-roots adds a store."""
    return PublicRoots.mozilla([estate.store_entry()])


def by_location(report: AuditReport, folder: Path) -> dict[str, Any]:
    found = {}
    for cert in report.certificates:
        for location in cert.locations:
            found[os.path.relpath(location, folder)] = cert
    return found


def rules(cert: Any, minimum: tuple[str, ...] = ("warning", "critical")) -> set[str]:
    return {f.rule for f in cert.findings if f.severity in minimum}


def test_fixture_estate_gets_exactly_the_expected_verdicts(estate: Estate, public: PublicRoots) -> None:
    report = audit([str(estate.folder)], now=NOW, public_roots=public)
    found = by_location(report, estate.folder)
    assert set(found) == set(EXPECTED)
    for location, (verdict, severity, expected_rules) in EXPECTED.items():
        cert = found[location]
        assert (cert.verdict, cert.severity, rules(cert)) == (verdict, severity, expected_rules), location
    assert [(os.path.basename(t), m) for t, m in report.errors] == [
        ("garbage.pem", "not a certificate file (PEM, DER, PKCS#7 or PKCS#12)")]
    assert report.skipped == 3  # README.txt and the two key files
    assert report.worst() == "critical"
    assert found["public-combined-digicert.pem"].root.kind == "public"
    assert found["public-combined-digicert.pem"].root.stores == ["test-public"]
    assert found["private-combined.pem"].root.kind == "private"
    assert found["private-combined.pem"].chain == ["expc1.example.com", "Example UC Issuing CA", "Example UC Root CA"]
    assert "key.match" in rules(found["matching.pem"], ("info",))


def test_public_classification_comes_from_the_store_not_the_name(estate: Estate) -> None:
    """Negative control: without the extra store, the same 'public' hierarchy is just another private PKI."""
    report = audit([str(estate.folder)], now=NOW, public_roots=PublicRoots.mozilla())
    found = by_location(report, estate.folder)
    assert found["public-combined-digicert.pem"].root.kind == "private"
    assert found["public-combined-digicert.pem"].verdict == "ok"
    assert found["public-combined-letsencrypt.pem"].verdict == "ok"


def test_a_real_mozilla_root_is_public_and_a_look_alike_is_not(tmp_path: Path) -> None:
    import certifi

    with warnings.catch_warnings():  # a few Mozilla roots have serials cryptography warns about
        warnings.simplefilter("ignore")
        roots = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())
    isrg = next(c for c in roots if "ISRG Root X1" in c.subject.rfc4514_string())
    (tmp_path / "isrg.pem").write_bytes(isrg.public_bytes(serialization.Encoding.PEM))
    fake = make_cert(isrg.subject, now=NOW, ca=True, days_left=3000)
    (tmp_path / "fake-isrg.pem").write_bytes(fake.pem())
    found = by_location(audit([str(tmp_path)], now=NOW), tmp_path)
    assert found["isrg.pem"].root.kind == "public"
    assert found["isrg.pem"].root.stores == [mozilla_label()]
    assert mozilla_label().startswith("mozilla@certifi-")
    assert found["fake-isrg.pem"].root.kind == "private"


def test_leaf_alone_from_a_known_public_ca_is_likely_public(estate: Estate, tmp_path: Path) -> None:
    shutil.copy(estate.folder / "public-combined-letsencrypt.pem", tmp_path / "expe2.pem")
    cert = audit([str(tmp_path)], now=NOW).certificates[0]
    assert cert.root.kind == "likely-public"
    assert cert.verdict == "clientauth-ends"
    assert rules(cert, ("info",)) >= {"chain.incomplete", "root.class"}


def test_renew_early_dates_follow_the_ca_cut_off_and_sc081(estate: Estate, public: PublicRoots) -> None:
    found = by_location(audit([str(estate.folder)], now=NOW, public_roots=public), estate.folder)
    cert = found["public-combined-digicert.pem"]
    # DigiCert issues clientAuth until 2027-02-28; a certificate issued that day may last 200 days (SC-081).
    assert "DigiCert issues clientAuth only until 2027-02-28" in cert.findings[-1].message
    assert cert.remedy is not None and "before 2027-03-01, to keep clientAuth until about 2027-09-16" in cert.remedy
    assert "letsencrypt.org" in found["public-combined-letsencrypt.pem"].findings[-1].source


@pytest.mark.parametrize(("version", "server_only", "remedy_words"), [
    ("X14.3", ("warning", "Expressway up to X15.3 refuses it"), "Expressway X14 to X15.3 refuses"),
    ("X15.4", ("warning", "EnableServerEkuUpload: On"), "Expressway-E takes the serverAuth-only renewal"),
    ("X15.5", ("info", "Fine in the X15.5 Server store"), "Client store"),
])
def test_expressway_version_refines_verdicts(estate: Estate, public: PublicRoots, version: str,
                                             server_only: tuple[str, str], remedy_words: str) -> None:
    from privca.common.decision import parse_expressway_version

    report = audit([str(estate.folder)], now=NOW, public_roots=public,
                   expressway_version=parse_expressway_version(version))
    found = by_location(report, estate.folder)
    cert = found["public-server-only.pem"]
    assert (cert.verdict, cert.severity) == ("server-only", server_only[0])
    assert server_only[1] in (cert.remedy or "")
    assert remedy_words in (found["public-combined-letsencrypt.pem"].remedy or "")
    # The verdict and its remedy agree: renew early where that helps, and not on X15.5, where it does not.
    digicert = found["public-combined-digicert.pem"]
    if version == "X15.5":
        assert digicert.verdict == "split-at-renewal" and "No early renewal needed" in (digicert.remedy or "")
    else:
        assert digicert.verdict == "renew-early" and (digicert.remedy or "").startswith("Renew early")
    # Version-independent problems stay as they are.
    assert found["restricted.pem"].verdict == "broken"


def test_expressway_version_parsing() -> None:
    from privca.common.decision import LEGACY, X15_4, X15_5, parse_expressway_version

    assert [parse_expressway_version(v) for v in ("X14", "x15.0", "X15.3.2", "15.4", "X15.5", "X16.1")] == [
        LEGACY, LEGACY, LEGACY, X15_4, X15_5, X15_5]
    for bad in ("X12.6", "fifteen", "X15.a"):
        with pytest.raises(UsageError, match="--expressway-version"):
            parse_expressway_version(bad)


def test_a_policy_change_is_a_data_edit(estate: Estate, public: PublicRoots, tmp_path: Path) -> None:
    edited = tmp_path / "trust.toml"
    edited.write_text(DATA_FILE.read_text().replace("client_auth_ends = 2027-03-01", "client_auth_ends = 2026-10-01"))
    shipped = by_location(audit([str(estate.folder)], now=NOW, public_roots=public), estate.folder)
    changed = by_location(audit([str(estate.folder)], now=NOW, public_roots=public,
                                trust=load_trust_data(edited)), estate.folder)
    assert shipped["public-combined-digicert.pem"].verdict == "renew-early"
    assert changed["public-combined-digicert.pem"].verdict == "clientauth-ends"


def test_every_date_in_the_data_file_has_a_source() -> None:
    import tomllib

    data = tomllib.loads(DATA_FILE.read_text())
    tables = [data["chrome"], *data["max_validity"], *data["ca"], *data["removed_root"]]
    assert all(str(table["source"]).startswith("https://") for table in tables)
    trust = load_trust_data()
    assert trust.max_validity_days(datetime(2026, 3, 14).date()) == 398
    assert trust.max_validity_days(datetime(2026, 3, 15).date()) == 200
    assert trust.max_validity_days(datetime(2029, 3, 15).date()) == 47


def test_a_broken_data_file_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = 1\nrevision = "x"\n[chrome]\npolicy = "p"\n[[ca]]\nname = "X"\n')
    with pytest.raises(UsageError) as caught:
        load_trust_data(bad)
    text = caught.value.one_line()
    assert "chrome.leaf_serverauth_only_from" in text and "ca[0].client_auth_ends" in text
    assert "max_validity" in text


def test_removed_roots_are_flagged_from_the_data(estate: Estate, tmp_path: Path) -> None:
    from privca.inspect.certinfo import describe

    root = describe(estate.public_root.cert)
    edited = tmp_path / "trust.toml"
    edited.write_text(DATA_FILE.read_text() + f'''
[[removed_root]]
name = "Example Public Root R1"
sha256 = "{root.sha256}"
spki_sha256 = "{root.spki_sha256}"
removed_from = ["Chrome", "Mozilla"]
date = 2026-04-15
applies_to = "all"
source = "https://example.test/removal"
''')
    found = by_location(audit([str(estate.folder)], now=NOW, trust=load_trust_data(edited)), estate.folder)
    cert = found["public-combined-digicert.pem"]
    assert cert.root.kind == "formerly-public"
    assert "root.removed" in rules(cert)
    # It is still a public CA's certificate for the clientAuth timeline.
    assert "timeline.renew-early" in rules(cert)


def test_input_formats(estate: Estate, tmp_path: Path) -> None:
    leaf_cert = estate.leaves["private-combined.pem"]
    chain = [leaf_cert.cert, estate.private_ca.cert, estate.private_root.cert]
    (tmp_path / "leaf.der").write_bytes(leaf_cert.cert.public_bytes(serialization.Encoding.DER))
    (tmp_path / "chain.p7b").write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.DER))
    (tmp_path / "chain.p7c").write_bytes(pkcs7.serialize_certificates(chain, serialization.Encoding.PEM))
    (tmp_path / "bundle.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"expc1", leaf_cert.key, leaf_cert.cert, [estate.private_ca.cert],
        serialization.BestAvailableEncryption(b"s3cret pass")))
    (tmp_path / "combined.pem").write_bytes(leaf_cert.key_pem() + leaf_cert.pem() + estate.private_ca.pem())
    (tmp_path / "wrongkey.pem").write_bytes(estate.leaves["matching.pem"].key_pem() + leaf_cert.pem())
    (tmp_path / "pw").write_bytes(b"s3cret pass\n")
    from privca.inspect.sources import read_password_file

    report = audit([str(tmp_path)], now=NOW, password=read_password_file(tmp_path / "pw"))
    assert report.errors == []
    assert len(report.certificates) == 3  # the leaf, its CA and the root, each once
    leaf_report = next(c for c in report.certificates if c.info.common_name == "expc1.example.com")
    # PKCS#7 certificate lists have no order, so only the file is certain there.
    assert sorted(os.path.basename(loc).split("#")[0] for loc in leaf_report.locations) == sorted(
        ["leaf.der", "chain.p7b", "chain.p7c", "bundle.p12", "combined.pem", "wrongkey.pem"])
    assert not any(f.rule == "chain.order" for c in report.certificates for f in c.findings)
    messages = [f.message for f in leaf_report.findings if f.rule in ("key.match", "key.mismatch")]
    assert any("combined.pem matches" in m for m in messages)
    assert any("bundle.p12 matches" in m for m in messages)
    assert any("wrongkey.pem does not match" in m for m in messages)

    wrong = audit([str(tmp_path / "bundle.p12")], now=NOW, password=b"wrong")
    assert wrong.errors == [(str(tmp_path / "bundle.p12"), "PKCS#12: wrong password (or a damaged file)")]
    missing = audit([str(tmp_path / "bundle.p12")], now=NOW)
    assert "give the password with --password-file" in missing.errors[0][1]


def test_chain_order_in_a_file(estate: Estate, tmp_path: Path) -> None:
    leaf_cert = estate.leaves["private-combined.pem"]
    (tmp_path / "good.pem").write_bytes(leaf_cert.pem() + estate.private_ca.pem() + estate.private_root.pem())
    (tmp_path / "bad.pem").write_bytes(leaf_cert.pem() + estate.private_root.pem() + estate.private_ca.pem())
    good = audit([str(tmp_path / "good.pem")], now=NOW)
    bad = audit([str(tmp_path / "bad.pem")], now=NOW)
    assert "chain.order" not in rules(good.certificates[-1]) and good.worst() == "info"
    leaf_report = next(c for c in bad.certificates if c.info.common_name == "expc1.example.com")
    assert leaf_report.verdict == "chain-order"


def test_bad_targets_are_reported_and_the_audit_goes_on(estate: Estate, tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_bytes(b"")
    (tmp_path / "truncated.pem").write_bytes(estate.private_ca.pem()[:300])
    (tmp_path / "bad-base64.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
    (tmp_path / "csr-only.pem").write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n")
    os.mkfifo(tmp_path / "a-fifo.pem")  # must not hang the audit
    (tmp_path / "dangling.pem").symlink_to(tmp_path / "nowhere")
    shutil.copy(estate.folder / "private-combined.pem", tmp_path / "good.pem")
    report = audit([str(tmp_path), str(tmp_path / "no-such-file.pem")], now=NOW)
    errors = {os.path.basename(t): m for t, m in report.errors}
    assert errors == {
        "a-fifo.pem": "not a regular file",
        "bad-base64.pem": "PEM block CERTIFICATE is not valid base64",
        "csr-only.pem": "holds no certificate (CERTIFICATE REQUEST block ignored)",
        "dangling.pem": "no such file, folder or host:port",
        "empty.pem": "the file is empty",
        "no-such-file.pem": "no such file, folder or host:port",
        "truncated.pem": "PEM markers but no complete PEM block",
    }
    assert [c.info.common_name for c in report.certificates] == ["expc1.example.com"]


def test_audit_changes_nothing(estate: Estate, public: PublicRoots) -> None:
    before = snapshot(estate.folder)
    audit([str(estate.folder)], now=NOW, public_roots=public)
    assert snapshot(estate.folder) == before


# --- command line --------------------------------------------------------------------------------------------------

@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.cli import audit_cmd

    monkeypatch.setattr(audit_cmd, "now", lambda: NOW)


@pytest.fixture(scope="session")
def public_root_file(estate: Estate, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("roots") / "test-public-root.pem"
    path.write_bytes(estate.public_root.pem())
    return path


def test_cli_json_and_exit_codes(cli: Any, pinned: None, estate: Estate, public_root_file: Path) -> None:
    result = cli("audit", estate.folder, "--public-roots", public_root_file, "--json")
    assert result.exit_code == 22, result.stderr  # worst finding: critical
    data = json.loads(result.stdout)
    assert data["summary"]["certificates"] == len(EXPECTED)
    assert data["summary"]["unreadable"] == 1
    assert data["public_root_stores"] == [mozilla_label(), "file:test-public-root.pem"]
    assert data["trust_data"]["revision"] == "2026-11-29"
    assert data["errors"][0]["target"].endswith("garbage.pem")
    verdicts = {os.path.relpath(c["locations"][0], estate.folder): c["verdict"] for c in data["certificates"]}
    assert verdicts["public-combined-digicert.pem"] == "renew-early"
    assert "Audited 20 certificates" in result.stderr
    assert cli("audit", estate.folder, "--fail-on", "never").exit_code == 0
    only_ok = estate.folder / "private-combined.pem"
    assert cli("audit", only_ok, estate.folder / "ca" / "private-root.pem", estate.folder / "ca" /
               "private-issuing.pem").exit_code == 0
    assert cli("audit", only_ok, "--fail-on", "info").exit_code == 20
    assert cli("audit", estate.folder / "near-expiry.pem", "--fail-on", "critical").exit_code == 0
    assert cli("audit", estate.folder / "near-expiry.pem").exit_code == 21


def test_cli_table_lists_findings_and_remedies(cli: Any, pinned: None, estate: Estate,
                                               public_root_file: Path) -> None:
    result = cli("audit", estate.folder, "--public-roots", public_root_file, "--expressway-version", "X15.3")
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["severity", "verdict", "certificate", "position", "where", "root", "EKU",
                                    "expires"]
    assert any(line.startswith("critical\tbroken\tcube1.example.com") for line in lines)
    assert "    critical chain.eku: CA Example Server-only CA restricts" in result.stdout
    assert "remedy: Expressway X14 to X15.3 refuses" in result.stdout


def test_cli_csv_defuses_formulas(cli: Any, pinned: None, tmp_path: Path) -> None:
    """A root named like a spreadsheet formula lands in the root column; it must stay text."""
    evil = make_cert(name('=HYPERLINK("http://x")'), now=NOW, ca=True)
    (tmp_path / "evil.pem").write_bytes(evil.pem())
    result = cli("audit", tmp_path, "--csv", "--fail-on", "never")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["root"] == "\'=HYPERLINK(\"http://x\")"
    assert rows[0]["root_kind"] == "private" and rows[0]["days_left"] == "300"


def test_cli_html_report_is_self_contained_and_escaped(cli: Any, pinned: None, estate: Estate,
                                                       tmp_path: Path) -> None:
    hostile = make_cert(name("<script>alert(1)</script>", "Example Ltd"), now=NOW, issuer=estate.private_ca,
                        eku=[SERVER], sans=["x.example.com"])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "hostile.pem").write_bytes(hostile.pem())
    shutil.copy(estate.folder / "restricted.pem", tmp_path / "in")
    shutil.copy(estate.folder / "ca" / "server-only-ca.pem", tmp_path / "in")
    report_file = tmp_path / "report.html"
    result = cli("audit", tmp_path / "in", "--html", report_file)
    assert result.exit_code == 22
    html = report_file.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<link" not in html and " src=" not in html  # nothing loaded from elsewhere
    assert "chain.eku" in html and "Certificate audit" in html
    # An existing report is not replaced without --force, and nothing is audited in vain.
    again = cli("audit", tmp_path / "in", "--html", report_file)
    assert again.exit_code == 9 and "already exists; use --force" in again.stderr
    assert cli("audit", tmp_path / "in", "--html", report_file, "--force").exit_code == 22


def test_cli_bad_options_are_one_line_errors(cli: Any, estate: Estate, tmp_path: Path) -> None:
    for args, expected in [
        (("--fail-on", "sometimes"), "--fail-on 'sometimes'"),
        (("--expressway-version", "X9"), "--expressway-version"),
        (("--json", "--csv"), "--json and --csv"),
        (("--trust-data", str(tmp_path / "missing.toml")), "--trust-data"),
        (("--password-file", str(tmp_path / "missing")), "--password-file"),
    ]:
        result = cli("audit", estate.folder, *args)
        assert result.exit_code == 2, args
        if "--json" in args:  # asked for JSON: the error is a JSON document (docs/json.md)
            assert json.loads(result.stderr)["error"]["kind"] == "usage"
        else:
            assert result.stderr.startswith("Error: ")
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_cli_garbage_never_shows_a_traceback(estate: Estate, tmp_path: Path) -> None:
    from conftest import privca_subprocess

    (tmp_path / "junk.crt").write_bytes(os.urandom(2048))
    result = privca_subprocess("audit", tmp_path / "junk.crt", tmp_path / "nothing-here", "127.0.0.1:1")
    assert result.returncode == 21
    assert "Traceback" not in result.stderr + result.stdout
    assert "connection refused" in result.stdout


# --- live endpoints ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def s_server(estate: Estate, tmp_path: Path) -> Iterator[Any]:
    """Start ``openssl s_server`` on a free loopback port serving a leaf and its intermediate."""
    started: list[subprocess.Popen] = []

    def start(*extra: str) -> int:
        leaf_cert = estate.leaves["private-combined.pem"]
        (tmp_path / "leaf.pem").write_bytes(leaf_cert.pem())
        (tmp_path / "leaf.key").write_bytes(leaf_cert.key_pem())
        (tmp_path / "int.pem").write_bytes(estate.private_ca.pem())
        port = free_port()
        process = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                                    tmp_path / "leaf.pem", "-key", tmp_path / "leaf.key", "-cert_chain",
                                    tmp_path / "int.pem", "-CAfile", tmp_path / "int.pem", "-naccept", "5", "-quiet",
                                    *extra], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.05)
        raise AssertionError("openssl s_server did not start")

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_live_endpoint_serves_leaf_and_intermediate(s_server: Any, estate: Estate) -> None:
    port = s_server()
    report = audit([f"127.0.0.1:{port}", str(estate.folder / "ca" / "private-root.pem")], now=NOW)
    assert report.errors == []
    locations = {c.info.common_name: c.locations for c in report.certificates}
    assert locations["expc1.example.com"] == [f"127.0.0.1:{port}#1"]
    assert locations["Example UC Issuing CA"] == [f"127.0.0.1:{port}#2"]
    served_leaf = next(c for c in report.certificates if c.info.common_name == "expc1.example.com")
    assert served_leaf.info.sha256 == by_location(audit([str(estate.folder / "private-combined.pem")], now=NOW),
                                                  estate.folder)["private-combined.pem"].info.sha256
    assert served_leaf.chain == ["expc1.example.com", "Example UC Issuing CA", "Example UC Root CA"]
    assert served_leaf.verdict == "ok"


def test_live_endpoint_that_demands_a_client_certificate(s_server: Any) -> None:
    """CUBE and CUCM SIP TLS ask for a client certificate; over TLS 1.2 the server aborts after sending its chain."""
    port = s_server("-Verify", "1", "-verify_return_error", "-tls1_2")
    report = audit([f"127.0.0.1:{port}"], now=NOW)
    assert report.errors == []
    ordered = sorted(report.certificates, key=lambda c: c.locations[0])
    assert [c.info.common_name for c in ordered] == ["expc1.example.com", "Example UC Issuing CA"]
    notes = [f.message for f in ordered[0].findings if f.rule == "input.note"]
    assert len(notes) == 1 and "TLS handshake failed" in notes[0] and "the certificates it sent were read" in notes[0]


def test_closed_port_and_non_tls_listeners_are_per_target_errors(s_server: Any) -> None:
    good = s_server()
    closed = free_port()
    talker, silent = socket.socket(), socket.socket()
    for listener in (talker, silent):
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)

    def answer_http() -> None:
        connection, _ = talker.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    http_port, silent_port = talker.getsockname()[1], silent.getsockname()[1]
    try:
        report = audit([f"127.0.0.1:{closed}", f"127.0.0.1:{http_port}", f"127.0.0.1:{silent_port}",
                        f"127.0.0.1:{good}"], now=NOW, timeout=1.0)
    finally:
        talker.close()
        silent.close()
    errors = dict(report.errors)
    assert errors[f"127.0.0.1:{closed}"] == "connection refused (nothing listens on that port)"
    assert errors[f"127.0.0.1:{http_port}"].startswith("TLS handshake failed")
    assert errors[f"127.0.0.1:{silent_port}"] == "no TLS answer within 1 s (not a TLS port?)"
    assert len(report.certificates) == 2  # the good endpoint was still read


def test_endpoint_parsing() -> None:
    from privca.inspect.sources import expand_targets, parse_endpoint

    assert parse_endpoint("expe.example.com:443") == ("expe.example.com", 443)
    assert parse_endpoint("[::1]:5061") == ("::1", 5061)
    assert parse_endpoint("expe.example.com") is None
    assert parse_endpoint("host:99999") is None
    units = expand_targets(["cucm1.example.com:8443", "no-such-file.pem"])
    assert [(u.kind, u.name) for u in units] == [("endpoint", "cucm1.example.com:8443"),
                                                 ("file", "no-such-file.pem")]


def test_certinfo_summary(estate: Estate) -> None:
    from privca.inspect.certinfo import describe

    info = describe(estate.leaves["private-combined.pem"].cert)
    data = info.to_dict(NOW)
    assert data["sans"] == [{"type": "dns", "value": "expc1.example.com"}, {"type": "dns", "value": "expc.example.com"}]
    assert data["eku"] == ["serverAuth", "clientAuth"]
    assert data["key_usage"] == ["digitalSignature"]
    assert (data["key_type"], data["key_size"], data["signature_hash"]) == ("ec:secp256r1", 256, "sha256")
    assert (data["position"], data["is_ca"], data["days_left"]) == ("leaf", False, 300)
    assert data["fingerprint_sha256"] == estate.leaves["private-combined.pem"].cert.fingerprint(hashes.SHA256()).hex()
    assert describe(estate.private_root.cert).position == "root"
    assert describe(estate.private_ca.cert).position == "intermediate"
    no_eku = make_cert(name("any.example.com"), now=NOW, issuer=estate.private_ca, sans=["any.example.com"])
    assert describe(no_eku.cert).eku is None and describe(no_eku.cert).has_eku("clientAuth")
    client_only = leaf("client.example.com", estate.private_ca, NOW, eku=[CLIENT])
    assert not describe(client_only.cert).has_eku("serverAuth")


class SilentListeners:
    """Loopback ports that accept a connection and never answer the TLS handshake, counting how many of their
    connections are open at once (a probe holds one open until its timeout)."""

    def __init__(self, count: int) -> None:
        self.sockets = []
        self.open = self.peak = 0
        self.lock = threading.Lock()
        for _ in range(count):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            self.sockets.append(listener)
            threading.Thread(target=self._serve, args=(listener,), daemon=True).start()

    @property
    def targets(self) -> list[str]:
        return [f"127.0.0.1:{listener.getsockname()[1]}" for listener in self.sockets]

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        with connection:
            while connection.recv(4096):  # read the ClientHello and say nothing until the prober gives up
                pass
        with self.lock:
            self.open -= 1

    def close(self) -> None:
        for listener in self.sockets:
            listener.close()


def test_endpoints_are_probed_concurrently_and_reported_in_the_order_given(s_server: Any) -> None:
    good, closed = s_server(), free_port()
    silent = SilentListeners(6)
    targets = [silent.targets[0], f"127.0.0.1:{closed}", *silent.targets[1:3], f"127.0.0.1:{good}",
               *silent.targets[3:]]
    try:
        sequential = audit(targets, now=NOW, timeout=1.0, concurrency=1)
        # Negative control: one probe at a time, as before. (The listener may see a closed connection a moment
        # after the next one opens, so one probe can look like two; never like four.)
        assert silent.peak <= 2
        silent.peak = 0
        concurrent = audit(targets, now=NOW, timeout=1.0, concurrency=4)
        assert silent.peak >= 4  # four of the six silent endpoints waited at the same time
    finally:
        silent.close()
    assert [target for target, _ in concurrent.errors] == [t for t in targets if t != f"127.0.0.1:{good}"]
    assert concurrent.to_dict() == sequential.to_dict()  # the same report, in the same order


def test_cli_concurrency_is_bounded(cli: Any, estate: Estate) -> None:
    for bad in ("0", "257", "many"):
        result = cli("audit", str(estate.folder / "ca"), "--concurrency", bad)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "--concurrency" in result.stderr
    assert cli("audit", str(estate.folder / "ca"), "--concurrency", "1", "--fail-on", "never").exit_code == 0
