"""EST enrollment (RFC 7030) over HTTPS against clients privca did not write.

- curl: cacerts, csrattrs, simpleenroll with HTTP Basic (the one-time challenge as the password), simplereenroll
  with the current certificate as the TLS client certificate; answers decoded and checked with openssl
  (``pkcs7 -print_certs``, ``asn1parse``, ``verify -purpose``).
- strongSwan's ``pki --est`` (its own TLS stack, libtls): first enrollment with the password, re-enrollment with a
  new key authenticated by the old certificate; ``pki --estca`` for cacerts.
- The server's certificate is one privca issued itself (``privca issue``), served by ``privca serve --https-port``.
- Negative controls: no, wrong, reused and expired passwords, a password for another profile, an unknown profile
  label, a revoked certificate and a certificate with other names re-enrolling, a client certificate privca did
  not issue, plain HTTP, malformed bodies; each refused with nothing recorded but the refusal event (and nothing
  at all where no decision was made: a missing password, a TLS handshake refused).
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from conftest import certificate_row, ledger_events, run_tool

CURL = shutil.which("curl")
STRONGSWAN_PKI = shutil.which("pki")

# A store profile for the test server's certificate: like cube (serverAuth + clientAuth), but allowed to name the
# loopback address the test server listens on.
LOOPBACK_PROFILE = """extends = "cube"
schema = 1
description = "EST test server on the loopback address"
kind = "leaf"
validity_days = 30

[san]
allow_special_ips = true
"""


def test_peer_tools_are_installed() -> None:
    """scripts/test installs them; a missing one fails here instead of skipping the interop tests."""
    assert CURL, "curl is missing: apt-get install curl (scripts/test does)"
    assert STRONGSWAN_PKI, "strongSwan's pki is missing: apt-get install strongswan-pki (scripts/test does)"
    help_text = run_tool(STRONGSWAN_PKI, "--help")
    assert "--est" in help_text.stdout + help_text.stderr, "this strongSwan pki has no --est (5.9.8+)"


@dataclass
class Device:
    folder: Path
    key: Any
    csr_der: bytes = b""

    @property
    def key_pem(self) -> Path:
        return self.folder / "key.pem"

    @property
    def csr_b64(self) -> Path:
        return self.folder / "csr.b64"

    @property
    def csr_der_path(self) -> Path:
        return self.folder / "csr.der"

    @property
    def cert_pem(self) -> Path:
        return self.folder / "cert.pem"


@dataclass
class Est:
    store_path: Path
    folder: Path
    http_port: int
    https_port: int
    ca_files: list[Path]  # issuing CA, root
    chain_pem: Path
    devices: int = 0
    process: Any = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def url(self, operation: str, label: str | None = "cube") -> str:
        return f"{self.base}/.well-known/est/{label + '/' if label else ''}{operation}"

    def challenge(self, cli: Any, profile: str = "cube", names: str | None = None, expires: str = "1h") -> str:
        args = ["enroll", "challenge", "--store", self.store_path, "--profile", profile, "--expires", expires]
        if names:
            args += ["--names", names]
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout.strip())

    def rows(self) -> dict[str, int]:
        with sqlite3.connect(self.store_path / "privca.db") as conn:
            counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                      for table in ("certificates", "enroll_requests", "events")}
            counts["used"] = conn.execute("SELECT count(*) FROM enroll_challenges WHERE used_at IS NOT NULL"
                                          ).fetchone()[0]
        return counts

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        return ledger_events(self.store_path, action)

    def certificate_row(self, serial: str) -> dict[str, Any]:
        return certificate_row(self.store_path, serial)

    def device(self, cn: str, sans: list[str] | None = None, *, key: Any = None) -> Device:
        self.devices += 1
        folder = self.folder / f"device{self.devices}"
        folder.mkdir()
        made = Device(folder, key or rsa.generate_private_key(65537, 2048))
        self.new_csr(made, cn, sans if sans is not None else [cn])
        return made

    def new_csr(self, device: Device, cn: str, sans: list[str], *, new_key: bool = False) -> None:
        if new_key:
            device.key = rsa.generate_private_key(65537, 2048)
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False)
        device.csr_der = builder.sign(device.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        device.key_pem.write_bytes(device.key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        device.key_pem.chmod(0o600)
        device.csr_der_path.write_bytes(device.csr_der)
        device.csr_b64.write_bytes(base64.encodebytes(device.csr_der))  # MIME lines, as curl users send it

    def curl(self, url: str, *args: str | Path) -> tuple[int, dict[str, str], bytes]:
        """curl, verifying the server against privca's chain; (status, headers, body)."""
        assert CURL
        headers = self.folder / "headers.txt"
        result = run_tool(CURL, "-s", "-S", "--cacert", self.chain_pem, "-D", headers, "-o", self.folder / "body",
                          "-w", "%{http_code}", *args, url)
        assert result.returncode == 0, result.stderr
        lines = headers.read_text().splitlines()
        found = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if value:
                found[name.strip().lower()] = value.strip()
        return int(result.stdout), found, (self.folder / "body").read_bytes()

    def enroll(self, device: Device, password: str | None, *, label: str | None = "cube",
               operation: str = "simpleenroll", client: bool = False) -> tuple[int, dict[str, str], bytes]:
        args: list[str | Path] = ["--data-binary", f"@{device.csr_b64}", "-H", "Content-Type: application/pkcs10"]
        if password is not None:
            args += ["--user", f"cube:{password}"]
        if client:
            args += ["--cert", device.cert_pem, "--key", device.key_pem]
        return self.curl(self.url(operation, label), *args)

    def issued(self, body: bytes, device: Device) -> x509.Certificate:
        """The certificate in a certs-only answer, read by openssl, saved as the device's certificate."""
        der = self.folder / "answer.p7"
        der.write_bytes(base64.b64decode(body))
        printed = run_tool("openssl", "pkcs7", "-inform", "DER", "-in", der, "-print_certs")
        assert printed.returncode == 0, printed.stderr
        certs = x509.load_pem_x509_certificates(printed.stdout.encode())
        assert len(certs) == 1
        device.cert_pem.write_text(printed.stdout)
        return certs[0]

    def verify(self, device: Device, purpose: str = "sslserver") -> Any:
        return run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", self.chain_pem, device.cert_pem)


def _pem(cli: Any, store_path: Path, *args: str) -> str:
    result = cli(*args, "--store", store_path, "--pem")
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


@pytest.fixture
def est_server(store_path: Path, tmp_path: Path, cli: Any) -> Iterator[Any]:
    """``privca serve --est`` as a real process (two workers) with plain HTTP and HTTPS on free loopback ports; its
    server certificate issued by the store's own CA. Each call starts one."""
    (store_path / "profiles").mkdir(exist_ok=True)
    (store_path / "profiles" / "loopback-server.toml").write_text(LOOPBACK_PROFILE)
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, default_profile: str | None = "cube") -> Est:
        folder = tmp_path / f"est{len(started) + 1}"
        folder.mkdir()
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
        (folder / "server.key").chmod(0o600)
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "est.example.test")]))
               .add_extension(x509.SubjectAlternativeName([
                   x509.DNSName("est.example.test"),
                   x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
               .sign(key, hashes.SHA256()))
        (folder / "server.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        result = cli("issue", folder / "server.csr", "--profile", "loopback-server", "--store", store_path)
        assert result.exit_code == 0, result.stderr
        ca_files = []
        for name in ("issuing-1", "root-1"):
            path = folder / f"{name}.pem"
            path.write_text(_pem(cli, store_path, "ca", "show", name))
            ca_files.append(path)
        chain = folder / "chain.pem"
        chain.write_text("".join(path.read_text() for path in ca_files))
        log = folder / "serve.log"
        args = [sys.executable, "-m", "privca", "serve", "--store", str(store_path), "--port", "0", "--est",
                "--https-port", "0", "--tls-cert", str(folder / "server.fullchain.pem"),
                "--tls-key", str(folder / "server.key"), *extra]
        if default_profile:
            args += ["--enroll-profile", default_profile]
        with log.open("wb") as handle:
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=handle)
        started.append(process)
        deadline = time.monotonic() + 60
        while "listening on https" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        http_port = int(text.split("listening on http://127.0.0.1:")[1].split()[0])
        https_port = int(text.split("listening on https://127.0.0.1:")[1].split()[0])
        est = Est(store_path, folder, http_port, https_port, ca_files, chain, process=process)
        for _ in range(100):  # the workers accept once they have started
            if run_tool(CURL or "curl", "-s", "--cacert", chain, est.url("cacerts")).returncode == 0:
                break
            time.sleep(0.1)
        return est

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def refused(est: Est, before: dict[str, int], reason: str) -> dict[str, Any]:
    """Exactly one new row, the refusal event naming ``reason``; no certificate, request or used password."""
    assert est.rows() == {**before, "events": before["events"] + 1}
    event = est.events()[-1]
    assert event["action"] == "enroll-refuse" and event["channel"] == "est" and reason in event["reason"], event
    return event


# --- cacerts and csrattrs -----------------------------------------------------------------------------------

def test_cacerts_is_the_chain_in_a_certs_only_cms_read_by_curl_openssl_and_strongswan(est_server: Any) -> None:
    est = est_server()
    for label in ("cube", None):
        status, headers, body = est.curl(est.url("cacerts", label))
        assert status == 200, body
        assert headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
        assert headers["content-transfer-encoding"] == "base64"
        (est.folder / "cacerts.p7").write_bytes(base64.b64decode(body, validate=True))
        printed = run_tool("openssl", "pkcs7", "-inform", "DER", "-in", est.folder / "cacerts.p7", "-print_certs")
        assert printed.returncode == 0, printed.stderr
        certs = x509.load_pem_x509_certificates(printed.stdout.encode())
        names = sorted(str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) for c in certs)
        assert names == ["Test UC Issuing CA 1", "Test UC Root CA"]
    # strongSwan's own TLS stack and CMS parser (pki --estca) read the same answer.
    assert STRONGSWAN_PKI
    result = run_tool(STRONGSWAN_PKI, "--estca", "--url", est.base, "--cacert", est.ca_files[0], "--cacert",
                      est.ca_files[1], "--outform", "pem")
    assert result.returncode == 0, result.stderr
    assert "Test UC Root CA" in result.stderr + result.stdout


def test_csrattrs_names_the_profiles_key_type(est_server: Any, store_path: Path) -> None:
    (store_path / "profiles" / "cube-ec.toml").write_text(
        'extends = "cube"\nschema = 1\ndescription = "CUBE, EC keys"\nkind = "leaf"\nvalidity_days = 365\n\n'
        '[key]\nallowed = ["ec:secp256r1"]\n')
    est = est_server()
    status, headers, body = est.curl(est.url("csrattrs"))
    assert status == 200 and headers["content-type"] == "application/csrattrs"
    (est.folder / "attrs.der").write_bytes(base64.b64decode(body))
    parsed = run_tool("openssl", "asn1parse", "-inform", "DER", "-in", est.folder / "attrs.der").stdout
    assert ":rsaEncryption" in parsed and ":sha256WithRSAEncryption" in parsed, parsed
    status, _, body = est.curl(est.url("csrattrs", "cube-ec"))
    (est.folder / "attrs.der").write_bytes(base64.b64decode(body))
    parsed = run_tool("openssl", "asn1parse", "-inform", "DER", "-in", est.folder / "attrs.der").stdout
    assert ":id-ecPublicKey" in parsed and ":prime256v1" in parsed and ":ecdsa-with-SHA256" in parsed, parsed
    assert ":rsaEncryption" not in parsed
    # A label that is no profile: 404, for reading as for enrolling.
    assert est.curl(est.url("csrattrs", "no-such-profile"))[0] == 404
    assert est.curl(est.url("nonsense", "cube"))[0] == 404


# --- curl: enroll and re-enroll ------------------------------------------------------------------------------

def test_curl_enrolls_with_the_challenge_as_basic_password_then_reenrolls_with_its_certificate(
        est_server: Any, cli: Any) -> None:
    est = est_server()
    password = est.challenge(cli, names="cube1.example.com")
    device = est.device("cube1.example.com")
    status, headers, body = est.enroll(device, password)
    assert status == 200, body
    assert headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    cert = est.issued(body, device)
    assert est.verify(device, "sslserver").returncode == 0
    assert est.verify(device, "sslclient").returncode == 0
    serial = format(cert.serial_number, "x")
    assert est.certificate_row(serial)["channel"] == "est"
    assert [e["channel"] for e in est.events("issue") if e["serial"] == serial] == ["est"]
    assert est.rows()["used"] == 1
    # The same request sent again with the same password (a client retrying) gets the same certificate.
    status, _, body = est.enroll(device, password)
    assert status == 200 and est.issued(body, device).serial_number == cert.serial_number

    # Re-enrollment: a new key, authenticated by the current certificate in the TLS handshake, no password.
    old_key = device.key_pem.read_bytes()
    est.new_csr(device, "cube1.example.com", ["cube1.example.com"], new_key=True)
    (device.folder / "old-key.pem").write_bytes(old_key)
    (device.folder / "old-key.pem").chmod(0o600)
    args = ["--data-binary", f"@{device.csr_b64}", "--cert", device.cert_pem, "--key", device.folder / "old-key.pem"]
    status, _, body = est.curl(est.url("simplereenroll"), *args)
    assert status == 200, body
    renewed = est.issued(body, device)
    assert renewed.serial_number != cert.serial_number
    assert renewed.public_key() != cert.public_key()
    assert est.certificate_row(format(renewed.serial_number, "x"))["replaces"] == serial
    assert [e["channel"] for e in est.events("renew")] == ["est"]
    assert est.verify(device, "sslclient").returncode == 0


def test_curl_enrolls_an_ec_key(est_server: Any, cli: Any) -> None:
    """An ECDSA P-256 key and an ECDSA-SHA256 CSR, as IOS-XE makes with an EC key pair: same path, same checks."""
    est = est_server()
    password = est.challenge(cli, names="cube-ec.example.com")
    device = est.device("cube-ec.example.com", key=ec.generate_private_key(ec.SECP256R1()))
    status, _, body = est.enroll(device, password)
    assert status == 200, body
    cert = est.issued(body, device)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert est.verify(device, "sslserver").returncode == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment  # the profile's EC key usage


# --- strongSwan pki --est ------------------------------------------------------------------------------------

def strongswan_est(est: Est, device: Device, *args: str | Path) -> Any:
    assert STRONGSWAN_PKI
    return run_tool(STRONGSWAN_PKI, "--est", "--url", est.base, "--in", device.csr_der_path, "--cacert",
                    est.ca_files[0], "--cacert", est.ca_files[1], "--outform", "pem", *args, timeout=120)


def test_strongswan_enrolls_and_reenrolls_with_a_new_key(est_server: Any, cli: Any) -> None:
    est = est_server()  # strongSwan 5.9.8 has no --label: it enrolls under the default profile (--enroll-profile)
    password = est.challenge(cli, names="cube2.example.com")
    device = est.device("cube2.example.com")
    result = strongswan_est(est, device, "--userpass", f"cube2:{password}")
    assert result.returncode == 0, result.stderr
    device.cert_pem.write_text(result.stdout)
    cert = x509.load_pem_x509_certificate(result.stdout.encode())
    assert est.verify(device).returncode == 0
    serial = format(cert.serial_number, "x")
    assert est.certificate_row(serial)["channel"] == "est"

    old = device.folder / "old"
    old.mkdir()
    shutil.copy(device.cert_pem, old / "cert.pem")
    shutil.copy(device.key_pem, old / "key.pem")
    est.new_csr(device, "cube2.example.com", ["cube2.example.com"], new_key=True)
    result = strongswan_est(est, device, "--cert", old / "cert.pem", "--key", old / "key.pem")
    assert result.returncode == 0, result.stderr
    renewed = x509.load_pem_x509_certificate(result.stdout.encode())
    assert est.certificate_row(format(renewed.serial_number, "x"))["replaces"] == serial
    assert renewed.public_key() == device.key.public_key()

    # Negative control: a wrong password through strongSwan is refused (401), recorded as a refusal only.
    other = est.device("cube3.example.com")
    before = est.rows()
    result = strongswan_est(est, other, "--userpass", "cube3:WRONGWRONGWRONG")
    assert result.returncode != 0 and "401" in result.stderr, result.stderr
    refused(est, before, "wrong challenge password")


def test_strongswan_enrolls_and_reenrolls_an_ec_key_presenting_it_in_tls(est_server: Any, cli: Any) -> None:
    """ECDSA P-256 end to end: the CSR, the issued certificate, and strongSwan's TLS client authentication with the
    EC key when it re-enrolls."""
    est = est_server()
    password = est.challenge(cli, names="cube-ec2.example.com")
    device = est.device("cube-ec2.example.com", key=ec.generate_private_key(ec.SECP256R1()))
    result = strongswan_est(est, device, "--userpass", f"cube:{password}")
    assert result.returncode == 0, result.stderr
    device.cert_pem.write_text(result.stdout)
    cert = x509.load_pem_x509_certificate(result.stdout.encode())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    old = device.folder / "old"
    old.mkdir()
    shutil.copy(device.cert_pem, old / "cert.pem")
    shutil.copy(device.key_pem, old / "key.pem")
    device.key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(cert.subject).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("cube-ec2.example.com")]), False)
    device.csr_der_path.write_bytes(builder.sign(device.key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER))
    result = strongswan_est(est, device, "--cert", old / "cert.pem", "--key", old / "key.pem")
    assert result.returncode == 0, result.stderr
    renewed = x509.load_pem_x509_certificate(result.stdout.encode())
    assert est.certificate_row(format(renewed.serial_number, "x"))["replaces"] == format(cert.serial_number, "x")
    assert renewed.public_key() == device.key.public_key()


# --- who may enroll ------------------------------------------------------------------------------------------

def test_no_wrong_reused_expired_or_other_profile_password_is_401(est_server: Any, cli: Any,
                                                                   store_path: Path) -> None:
    est = est_server()
    device = est.device("cube4.example.com")
    before = est.rows()
    status, headers, body = est.enroll(device, None)
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    assert est.rows() == before  # no credentials, no decision: the client is asked to authenticate

    status, headers, body = est.enroll(device, "NOTAREALPASSWORDATALL")
    assert status == 401 and headers["www-authenticate"].startswith("Basic"), body
    refused(est, before, "wrong challenge password")

    cucm = est.challenge(cli, profile="cucm")
    before = est.rows()
    assert est.enroll(device, cucm)[0] == 401
    refused(est, before, "for profile cucm, not cube")

    expired = est.challenge(cli, names="cube4.example.com", expires="1m")
    with sqlite3.connect(store_path / "privca.db") as conn:
        conn.execute("UPDATE enroll_challenges SET expires_at = '2000-01-01T00:00:00Z' WHERE used_at IS NULL "
                     "AND profile = 'cube'")
    before = est.rows()
    assert est.enroll(device, expired)[0] == 401
    refused(est, before, "expired")

    password = est.challenge(cli, names="cube4.example.com")
    assert est.enroll(device, password)[0] == 200
    second = est.device("cube4.example.com")  # another key, the same used password
    before = est.rows()
    status, headers, _ = est.enroll(second, password)
    assert status == 401 and "www-authenticate" in headers
    refused(est, before, "already used")
    assert all(secret not in json.dumps(event) for event in est.events() for secret in (password, cucm, expired))


def test_unknown_label_names_outside_the_binding_and_malformed_bodies(est_server: Any, cli: Any) -> None:
    est = est_server()
    password = est.challenge(cli, names="cube5.example.com")
    device = est.device("cube5.example.com")
    before = est.rows()
    status, _, body = est.enroll(device, password, label="no-such-profile")
    assert status == 404, body
    refused(est, before, "no-such-profile")

    intruder = est.device("cube5.example.com", ["cube5.example.com", "intruder.example.com"])
    before = est.rows()
    status, _, body = est.enroll(intruder, password)
    assert status == 403 and b"intruder.example.com" in body
    refused(est, before, "intruder.example.com")

    for garbage in (b"this is not base64 !!", base64.b64encode(b"\x30\x03\x02\x01\x00"), b""):
        (device.folder / "garbage").write_bytes(garbage)
        before = est.rows()
        status, _, body = est.curl(est.url("simpleenroll"), "--user", f"cube:{password}", "--data-binary",
                                   f"@{device.folder / 'garbage'}")
        assert status == 400 and b"Traceback" not in body, body
        refused(est, before, "not a base64 PKCS#10 request")
    # Nothing of that used the password: the device enrolls with it now.
    assert est.enroll(device, password)[0] == 200


def test_plain_http_is_refused_and_the_password_stays_unused(est_server: Any, cli: Any) -> None:
    est = est_server()
    password = est.challenge(cli, names="cube6.example.com")
    device = est.device("cube6.example.com")
    before = est.rows()
    assert CURL
    result = run_tool(CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--user", f"cube:{password}",
                      "--data-binary", f"@{device.csr_b64}",
                      f"http://127.0.0.1:{est.http_port}/.well-known/est/cube/simpleenroll")
    assert result.stdout == "403"
    refused(est, before, "EST needs HTTPS")
    # cacerts over plain HTTP too: a client that trusts what it fetched in clear could be fed another CA.
    result = run_tool(CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      f"http://127.0.0.1:{est.http_port}/.well-known/est/cacerts")
    assert result.stdout == "403"
    assert est.enroll(device, password)[0] == 200


# --- who may re-enroll ---------------------------------------------------------------------------------------

def _enrolled(est: Est, cli: Any, cn: str) -> tuple[Device, x509.Certificate]:
    password = est.challenge(cli, names=cn)
    device = est.device(cn)
    status, _, body = est.enroll(device, password)
    assert status == 200, body
    return device, est.issued(body, device)


def test_reenroll_needs_a_client_certificate_that_is_valid_and_keeps_the_names(est_server: Any, cli: Any,
                                                                              tmp_path: Path) -> None:
    est = est_server()
    device, cert = _enrolled(est, cli, "cube7.example.com")
    # Without a client certificate: 401, nothing recorded.
    before = est.rows()
    status, headers, _ = est.enroll(device, None, operation="simplereenroll")
    assert status == 401 and "www-authenticate" in headers
    assert est.rows() == before
    # Other names than the certificate's.
    est.new_csr(device, "cube7.example.com", ["cube7.example.com", "other.example.com"])
    before = est.rows()
    status, _, body = est.enroll(device, None, operation="simplereenroll", client=True)
    assert status == 403, body
    refused(est, before, "a renewal keeps")
    # Revoked: the handshake still succeeds (the chain is privca's), the ledger says no.
    serial = format(cert.serial_number, "x")
    assert cli("revoke", serial, "--reason", "keyCompromise", "--store", est.store_path).exit_code == 0
    est.new_csr(device, "cube7.example.com", ["cube7.example.com"])
    before = est.rows()
    status, headers, body = est.enroll(device, None, operation="simplereenroll", client=True)
    assert status == 401 and "www-authenticate" in headers, body
    refused(est, before, "revoked")

    # A client certificate from another CA: the TLS handshake itself refuses it; nothing reaches privca.
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cube7.example.com")])
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    stranger = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(stranger_key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=1)).sign(stranger_key, hashes.SHA256()))
    (tmp_path / "stranger.pem").write_bytes(stranger.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "stranger.key").write_bytes(stranger_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    before = est.rows()
    assert CURL
    result = run_tool(CURL, "-s", "--cacert", est.chain_pem, "--cert", tmp_path / "stranger.pem", "--key",
                      tmp_path / "stranger.key", "--data-binary", f"@{device.csr_b64}", est.url("simplereenroll"))
    assert result.returncode != 0  # TLS alert: unknown CA
    assert est.rows() == before


def test_reenroll_under_another_label_is_refused(est_server: Any, cli: Any, store_path: Path) -> None:
    (store_path / "profiles" / "cube-b.toml").write_text(
        'extends = "cube"\nschema = 1\ndescription = "CUBE B"\nkind = "leaf"\nvalidity_days = 365\n')
    est = est_server()
    device, _ = _enrolled(est, cli, "cube8.example.com")
    before = est.rows()
    status, _, body = est.enroll(device, None, label="cube-b", operation="simplereenroll", client=True)
    assert status == 403, body
    refused(est, before, "not cube-b")


# --- the serve command ---------------------------------------------------------------------------------------

def test_serve_est_needs_https_and_an_owner_only_key(cli: Any, store_path: Path, tmp_path: Path) -> None:
    result = cli("serve", "--store", store_path, "--est")
    assert result.exit_code != 0 and "--https-port" in result.stderr and "Traceback" not in result.stderr
    result = cli("serve", "--store", store_path, "--https-port", "0", "--tls-cert", tmp_path / "x.pem")
    assert result.exit_code != 0 and "go together" in result.stderr
    key = tmp_path / "server.key"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o644)
    cert = tmp_path / "server.pem"
    cert.write_text(_pem(cli, store_path, "ca", "show", "issuing-1"))
    result = cli("serve", "--store", store_path, "--port", "0", "--https-port", "0", "--tls-cert", cert,
                 "--tls-key", key)
    assert result.exit_code != 0 and "chmod 600" in result.stderr, result.stderr
    key.chmod(0o600)
    result = cli("serve", "--store", store_path, "--port", "0", "--https-port", "0", "--tls-cert", cert,
                 "--tls-key", key)
    assert result.exit_code != 0 and "does not belong" in result.stderr, result.stderr


def test_an_encrypted_tls_key_opens_with_its_passphrase_and_serves_tls(cli: Any, store_path: Path,
                                                                        tmp_path: Path) -> None:
    """--tls-key may be encrypted (--tls-passphrase-file): the context built from it completes a real handshake
    with Python's ssl client verifying against privca's chain; a wrong passphrase is one line, no traceback."""
    import socket
    import ssl
    import threading

    from privca.errors import KeyMaterialError
    from privca.keys.material import Passphrase
    from privca.service.tls import TlsFiles, server_context

    (store_path / "profiles").mkdir(exist_ok=True)
    (store_path / "profiles" / "loopback-server.toml").write_text(LOOPBACK_PROFILE)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "est.example.test")]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("est.example.test")]), False)
           .sign(key, hashes.SHA256()))
    (tmp_path / "server.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    assert cli("issue", tmp_path / "server.csr", "--profile", "loopback-server", "--store", store_path).exit_code == 0
    key_path = tmp_path / "server.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"tls key secret")))
    key_path.chmod(0o600)
    chain = _pem(cli, store_path, "ca", "show", "issuing-1") + _pem(cli, store_path, "ca", "show", "root-1")
    files = TlsFiles(tmp_path / "server.fullchain.pem", key_path, Passphrase(b"tls key secret"))
    context = server_context(files, [chain])
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        server_context(TlsFiles(files.cert, key_path, Passphrase(b"not it")), [chain])
    with pytest.raises(KeyMaterialError, match="--tls-passphrase-file"):
        server_context(TlsFiles(files.cert, key_path, None), [chain])

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve_one)
    thread.start()
    client = ssl.create_default_context(cadata=chain)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client.wrap_socket(raw, server_hostname="est.example.test") as tls:
            assert tls.recv(2) == b"ok"
            assert tls.getpeercert()["subject"] == ((("commonName", "est.example.test"),),)
    thread.join(timeout=10)
    listener.close()
