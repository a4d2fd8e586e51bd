"""privca check: per-role predictions, each checked against a real peer where one exists (openssl verify -purpose,
pyca's verifier), with a negative control beside each positive case; and issuance and check agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from conftest import NOW, run_tool, snapshot
from estate import CLIENT, SERVER, Estate, build_estate, leaf, make_cert, name, resign_sha1, rsa_key

from privca.inspect.check import ROLES, check_certificate
from privca.common.decision import LEGACY, X15_4, X15_5
from privca.errors import CertificateInputError, UsageError


@pytest.fixture(scope="session")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    return build_estate(tmp_path_factory.mktemp("check") / "estate", NOW)


@pytest.fixture
def files(estate: Estate, tmp_path: Path) -> Any:
    """Write PEM files; returns a function name -> path for the given certificates (and keys)."""
    def write(file_name: str, *items: Any, key: Any = None) -> Path:
        path = tmp_path / file_name
        data = b"".join(item.pem() if hasattr(item, "pem") else item for item in items)
        path.write_bytes(data if key is None else key)
        return path
    return write


def run(path: Path, role: str, **kwargs: Any) -> Any:
    return check_certificate(path, role=role, now=NOW, **kwargs)


def problems(report: Any) -> set[str]:
    return {f.rule for f in report.findings if f.severity != "info"}


def test_private_combined_certificate_passes_for_expressway_c(estate: Estate, files: Any) -> None:
    issued = estate.leaves["private-combined.pem"]
    report = run(files("leaf.pem", issued), "expressway-c", chain_path=files("chain.pem", estate.private_ca,
                                                                              estate.private_root),
                 key_path=files("leaf.key", key=issued.key_pem()))
    assert (report.verdict, problems(report)) == ("pass", set())
    assert {f.rule for f in report.findings} >= {"eku.role", "key.match", "path.verify"}
    assert report.chain == ["expc1.example.com", "Example UC Issuing CA", "Example UC Root CA"]


@pytest.mark.parametrize(("role", "version", "verdict", "expected"), [
    ("expressway-c", None, "fail", {"eku.role"}),
    ("expressway-c", X15_5, "fail", {"eku.role"}),
    ("expressway-e", None, "fail", {"eku.role"}),
    ("expressway-e", LEGACY, "fail", {"eku.role"}),
    ("expressway-e", X15_4, "pass", set()),
    ("expressway-e", X15_5, "pass", set()),
    ("expressway-server", X15_5, "pass", set()),
    ("expressway-server", LEGACY, "warn", {"role.version"}),
    ("expressway-client", X15_5, "fail", {"eku.role"}),
    ("cucm", None, "fail", {"eku.role", "key.type", "key-usage.profile"}),
    ("cms", None, "fail", {"eku.role"}),
    ("cube", None, "fail", {"eku.role"}),
])
def test_server_only_certificate_by_role_and_version(estate: Estate, files: Any, role: str, version: str | None,
                                                     verdict: str, expected: set[str]) -> None:
    cert = files("srv.pem", estate.leaves["private-server-only.pem"], estate.private_ca, estate.private_root)
    report = run(cert, role, expressway_version=version)
    assert (report.verdict, problems(report)) == (verdict, expected)


def test_expressway_e_hint_without_a_version(estate: Estate, files: Any) -> None:
    report = run(files("srv.pem", estate.leaves["private-server-only.pem"]), "expressway-e")
    message = next(f.message for f in report.findings if f.rule == "eku.role")
    assert "X15.4 and later accept serverAuth-only on Expressway-E" in message


def test_client_only_certificate_fits_the_client_store_only(estate: Estate, files: Any) -> None:
    client = leaf("expc-client.example.com", estate.private_ca, NOW, eku=[CLIENT])
    path = files("client.pem", client, estate.private_ca, estate.private_root)
    # The store takes clientAuth alone, but Cisco's pattern (TAC 225693) has both EKUs: a warning, not a failure.
    report = run(path, "expressway-client", expressway_version=X15_5)
    assert (report.verdict, problems(report)) == ("warn", {"eku.client-store"})
    assert problems(run(path, "expressway-server", expressway_version=X15_5)) == {"eku.role"}
    # What privca's expressway-client profile issues passes.
    both = leaf("expc-client.example.com", estate.private_ca, NOW, eku=[SERVER, CLIENT])
    assert run(files("both.pem", both, estate.private_ca, estate.private_root), "expressway-client",
               expressway_version=X15_5).verdict == "pass"


def test_serverauth_only_intermediate_agrees_with_openssl_and_pyca(estate: Estate, files: Any, tmp_path: Path) -> None:
    """The leaf claims clientAuth, its CA allows serverAuth only: privca, OpenSSL and pyca all refuse it as a client."""
    restricted = estate.leaves["restricted.pem"]
    leaf_path = files("restricted.pem", restricted)
    chain = files("chain.pem", estate.server_only_ca)
    root = files("root.pem", estate.private_root)
    report = run(leaf_path, "expressway-c", chain_path=files("full.pem", estate.server_only_ca, estate.private_root))
    assert report.verdict == "fail" and "chain.eku" in problems(report)
    when = str(int(NOW.timestamp()))
    refused = run_tool("openssl", "verify", "-attime", when, "-purpose", "sslclient", "-CAfile", root, "-untrusted",
                       chain, leaf_path)
    assert refused.returncode != 0 and "unsuitable certificate purpose" in refused.stdout + refused.stderr
    # Negative control: the same leaf shape under the unrestricted CA passes both checks.
    good_path = files("good.pem", estate.leaves["private-combined.pem"])
    accepted = run_tool("openssl", "verify", "-attime", when, "-purpose", "sslclient", "-CAfile", root, "-untrusted",
                        files("ca.pem", estate.private_ca), good_path)
    assert accepted.returncode == 0, accepted.stderr
    good = run(good_path, "expressway-c", chain_path=files("gfull.pem", estate.private_ca, estate.private_root))
    assert good.verdict == "pass"
    verified = [f.message for f in good.findings if f.rule == "path.verify"]
    assert verified == ["chain verifies for serverAuth up to Example UC Root CA",
                        "chain verifies for clientAuth up to Example UC Root CA"]


def test_key_file_rules(estate: Estate, files: Any) -> None:
    issued = estate.leaves["matching.pem"]
    cert = files("leaf.pem", issued)
    key_pem = issued.key_pem()
    # Mismatch: every role refuses the pair.
    other = files("other.key", key=estate.leaves["private-combined.pem"].key_pem())
    assert "key.mismatch" in problems(run(cert, "cube", key_path=other))
    # Expressway needs a trailing newline; Meeting Server does not say so.
    no_newline = files("nonl.key", key=key_pem.rstrip(b"\n"))
    assert problems(run(cert, "expressway-c", key_path=no_newline)) == {"key.newline"}
    assert problems(run(cert, "cms", key_path=no_newline)) == set()
    # Expressway needs an unencrypted key; for CUBE (imported encrypted) it is only noted.
    encrypted = files("enc.key", key=issued.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase here")))
    assert problems(run(cert, "expressway-c", key_path=encrypted)) == {"key.encrypted"}
    cube = run(cert, "cube", key_path=encrypted)
    assert problems(cube) == set() and "key.encrypted" in {f.rule for f in cube.findings}
    # The right key, as Expressway wants it.
    assert run(cert, "expressway-c", key_path=files("good.key", key=key_pem)).verdict == "pass"
    with pytest.raises(CertificateInputError, match="not a readable PEM or DER private key"):
        run(cert, "expressway-c", key_path=files("junk.key", key=b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                                              b"-----END PRIVATE KEY-----\n"))


def test_chain_rules(estate: Estate, files: Any) -> None:
    issued = estate.leaves["private-combined.pem"]
    cert = files("leaf.pem", issued)
    out_of_order = run(cert, "cms", chain_path=files("rev.pem", estate.private_root, estate.private_ca))
    assert problems(out_of_order) == {"chain.order"}
    ordered = run(files("full.pem", issued, estate.private_ca, estate.private_root), "cms")
    assert problems(ordered) == set()
    incomplete = run(cert, "cms", chain_path=files("root-only.pem", estate.private_root))
    assert problems(incomplete) == {"chain.incomplete", "chain.extra", "chain.order"}
    unrelated = run(cert, "cms", chain_path=files("mixed.pem", estate.private_ca, estate.private_root,
                                                  estate.public_root))
    assert problems(unrelated) == {"chain.extra", "chain.order"}
    forged = run(files("forged.pem", estate.leaves["broken-chain.pem"]), "cms",
                 chain_path=files("c.pem", estate.private_ca, estate.private_root))
    assert "chain.signature" in problems(forged) and forged.verdict == "fail"
    no_chain = run(cert, "cms")
    assert problems(no_chain) == set() and "chain.none" in {f.rule for f in no_chain.findings}


def test_leaf_outliving_its_issuer_and_expiry(estate: Estate, files: Any) -> None:
    short_ca = make_cert(name("Short-lived CA", "Example Ltd"), now=NOW, issuer=estate.private_root, ca=True,
                         days_left=100)
    long_leaf = leaf("long.example.com", short_ca, NOW, days_left=300)
    report = run(files("long.pem", long_leaf, short_ca, estate.private_root), "expressway-c")
    assert problems(report) == {"chain.outlives"}
    assert problems(run(files("exp.pem", estate.leaves["expired.pem"]), "expressway-c")) == {"validity.expired"}
    assert problems(run(files("near.pem", estate.leaves["near-expiry.pem"]), "expressway-c")) == {"validity.expiring"}


def test_name_rules(estate: Estate, files: Any) -> None:
    wildcard = files("wild.pem", estate.leaves["wildcard.pem"])
    expressway = run(wildcard, "expressway-c")
    assert expressway.verdict == "fail" and problems(expressway) == {"san.wildcard"}
    assert run(wildcard, "cube").verdict == "warn"  # not documented as unsupported there; privca never issues one
    long_names = [f"node{i:03d}.cluster.example.com" for i in range(40)]
    too_long = leaf("node000.cluster.example.com", estate.private_ca, NOW, sans=long_names)
    assert problems(run(files("long.pem", too_long), "expressway-c")) == {"san.length"}
    cn_missing = leaf("expc9.example.com", estate.private_ca, NOW, sans=["other.example.com"])
    assert problems(run(files("cn.pem", cn_missing), "expressway-c")) == {"san.cn"}
    no_san = leaf("nosan.example.com", estate.private_ca, NOW, sans=[])
    assert problems(run(files("nosan.pem", no_san), "expressway-c")) == {"san.missing"}
    ip = leaf("cube1.example.com", estate.private_ca, NOW, ip_sans=["192.0.2.10"])
    assert problems(run(files("ip.pem", ip), "cube")) == set()  # CUBE's profile takes IP SANs
    assert problems(run(files("ip2.pem", ip), "expressway-c")) == {"san.type"}


def test_key_and_signature_rules(estate: Estate, files: Any) -> None:
    weak = leaf("weak.example.com", estate.private_ca, NOW, key=rsa.generate_private_key(65537, 1024))
    assert problems(run(files("weak.pem", weak), "expressway-c")) >= {"key.size"}
    sha1 = files("sha1.pem", estate.leaves["sha1.pem"])
    assert "signature.sha1" in problems(run(sha1, "expressway-c"))
    # Negative control: the same CA's SHA-256 leaf has no signature finding.
    legacy_ca = make_cert(name("Legacy CA 2", "Example Ltd"), now=NOW, issuer=estate.private_root, ca=True,
                          key=rsa_key())
    sha256 = leaf("new.example.com", legacy_ca, NOW)
    assert "signature.sha1" not in problems(run(files("sha256.pem", sha256), "expressway-c"))
    assert "signature.sha1" in problems(run(files("sha1b.pem", resign_sha1(sha256, legacy_ca)), "expressway-c"))
    ca_as_leaf = run(files("ca.pem", estate.private_ca), "expressway-c")
    assert "leaf.is-ca" in problems(ca_as_leaf)


def test_pkcs12_input_with_password(estate: Estate, tmp_path: Path) -> None:
    issued = estate.leaves["private-combined.pem"]
    bundle = tmp_path / "expc.p12"
    bundle.write_bytes(pkcs12.serialize_key_and_certificates(
        b"expc", issued.key, issued.cert, [estate.private_ca.cert, estate.private_root.cert],
        serialization.BestAvailableEncryption(b"p12 password")))
    report = run(bundle, "expressway-c", password=b"p12 password")
    assert report.verdict == "pass" and "key.match" in {f.rule for f in report.findings}
    with pytest.raises(CertificateInputError, match="PKCS#12: wrong password"):
        run(bundle, "expressway-c", password=b"nope")


def test_unknown_role_and_unreadable_input(estate: Estate, files: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown role"):
        run(files("a.pem", estate.leaves["private-combined.pem"]), "jabber")
    (tmp_path / "junk.pem").write_bytes(b"junk")
    with pytest.raises(CertificateInputError, match="junk.pem: not a certificate file"):
        run(tmp_path / "junk.pem", "cucm")


# --- issuance and check agree ----------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", sorted(ROLES))
def test_what_privca_issues_for_a_profile_passes_check_for_that_role(store: Any, passphrase: Any, make_csr: Any,
                                                                     tmp_path: Path, profile: str) -> None:
    from privca.authority.signer import issue

    csr = make_csr(f"{profile}.csr", cn=f"{profile}.example.com", sans=[f"{profile}.example.com"])
    record = issue(store, [csr], passphrase, now=NOW, profile=profile, out_dir=tmp_path / "out")[0].to_json()
    report = check_certificate(Path(record["cert_path"]), role=profile, now=NOW,
                               chain_path=Path(record["chain_path"]))
    assert (report.verdict, problems(report)) == ("pass", set()), [f.message for f in report.findings]
    # And OpenSSL agrees for every EKU the role needs.
    for eku, purpose in (("serverAuth", "sslserver"), ("clientAuth", "sslclient")):
        if eku in report.certificate.eku:
            verified = run_tool("openssl", "verify", "-attime", str(int(NOW.timestamp())), "-purpose", purpose,
                                "-CAfile", record["chain_path"], record["cert_path"])
            assert verified.returncode == 0, verified.stdout + verified.stderr


# --- command line ---------------------------------------------------------------------------------------------------

@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.cli import audit_cmd

    monkeypatch.setattr(audit_cmd, "now", lambda: NOW)


def test_cli_check(cli: Any, pinned: None, estate: Estate, files: Any, tmp_path: Path) -> None:
    good = files("good.pem", estate.leaves["private-combined.pem"], estate.private_ca, estate.private_root)
    result = cli("check", good, "--for", "expressway-c")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{good}: PASS for expressway-c")
    server_only = files("srv.pem", estate.leaves["private-server-only.pem"], estate.private_ca, estate.private_root)
    failed = cli("check", server_only, "--for", "expressway-c", "--json")
    assert failed.exit_code == 22
    data = json.loads(failed.stdout)
    assert data["verdict"] == "fail" and data["role"] == "expressway-c"
    eku = next(f for f in data["findings"] if f["rule"] == "eku.role")
    assert eku["severity"] == "critical" and "cisco.com" in eku["source"]
    assert cli("check", server_only, "--for", "expressway-e", "--expressway-version", "X15.4").exit_code == 0
    warned = cli("check", server_only, "--for", "expressway-server", "--expressway-version", "X15.3")
    assert warned.exit_code == 21
    assert cli("check", server_only, "--for", "expressway-server", "--expressway-version", "X15.3",
               "--fail-on", "critical").exit_code == 0


def test_cli_check_bad_input_is_one_line_and_changes_nothing(cli: Any, pinned: None, estate: Estate,
                                                              tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_bytes(b"\x30\x03\x02\x01\x05")
    before = snapshot(tmp_path)
    for args, code, text in [
        (("check", tmp_path / "junk.pem", "--for", "cucm"), 12, "junk.pem: not a certificate file"),
        (("check", tmp_path / "missing.pem", "--for", "cucm"), 12, "missing.pem: no such file"),
        (("check", tmp_path / "junk.pem", "--for", "webex"), 2, "unknown role"),
    ]:
        result = cli(*args)
        assert result.exit_code == code, result.stderr
        assert result.stderr.startswith("Error: ") and text in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
