"""SCEP enrollment (RFC 8894) against clients privca did not write.

- micromdm's ``scepclient`` (Debian ``scep``): first enrollment with a challenge bound to names, and renewal signed
  with the current certificate; it signs with SHA-1 and encrypts with single DES, so it needs both legacy switches,
  and without them it is refused (badAlg).
- certmonger's ``scep-submit``: GetCACaps, GetCACert, and PKIOperation with a pkiMessage built by an independent
  library (tests/scep_peer.py: pyasn1 + OpenSSL), whose reply signature scep-submit verifies.
- IOS-shaped requests (tests/scep_peer.py): GET with the base64 message in the query over HTTP/1.0, AES-128,
  AES-256 and 3DES content encryption, SHA-1 and SHA-256 signatures; replies checked with ``openssl cms -verify``
  and opened with ``openssl cms -decrypt``; issued certificates checked with ``openssl verify -purpose``.
- Negative controls: wrong, reused and expired challenges, a challenge for another profile, names outside a
  challenge's binding, a revoked certificate renewing, a tampered signature, DES and SHA-1 without the legacy
  switches; each refused with nothing recorded but the refusal event.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import scep_peer as sp
from conftest import certificate_row, ledger_events, run_tool

SCEPCLIENT = shutil.which("scepclient")
SCEP_SUBMIT = "/usr/lib/certmonger/scep-submit"
STRONGSWAN_PKI = shutil.which("pki")


def test_peer_tools_are_installed() -> None:
    """scripts/test installs them; a missing one fails here instead of skipping the interop tests."""
    assert SCEPCLIENT, "scepclient is missing: apt-get install scep (scripts/test does)"
    assert Path(SCEP_SUBMIT).exists(), "scep-submit is missing: apt-get install certmonger (scripts/test does)"
    assert STRONGSWAN_PKI, "strongSwan's pki is missing: apt-get install strongswan-pki (scripts/test does)"
    plugins = run_tool(STRONGSWAN_PKI, "--help").stderr
    assert "curl_plugin_create not found" not in plugins, "apt-get install libstrongswan-extra-plugins"


@dataclass
class Scep:
    store_path: Path
    folder: Path
    port: int
    chain_pem: Path  # issuing CA + root
    ra_pem: Path
    stop: Any = None
    devices: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scep/cube"

    def challenge(self, cli: Any, profile: str = "cube", names: str | None = None, expires: str = "1h") -> str:
        args = ["enroll", "challenge", "--store", self.store_path, "--profile", profile, "--expires", expires]
        if names:
            args += ["--names", names]
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        return result.stdout.strip()

    def rows(self) -> dict[str, int]:
        with sqlite3.connect(self.store_path / "privca.db") as conn:
            return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("certificates", "enroll_requests", "events")}

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        return ledger_events(self.store_path, action)

    def certificate_row(self, serial: str) -> dict[str, Any]:
        return certificate_row(self.store_path, serial)

    def device(self, cn: str) -> sp.Device:
        self.devices += 1
        return sp.Device.make(self.folder / f"device{self.devices}", cn)

    def send(self, message: bytes, *, get: bool = True) -> sp.Reply:
        if get:
            status, headers, body = sp.http("127.0.0.1", self.port, "GET",
                                            sp.get_path("/scep/cube/pkiclient.exe", message))
        else:
            status, headers, body = sp.http("127.0.0.1", self.port, "POST", "/scep/cube?operation=PKIOperation",
                                            message, version="1.1")
        assert status == 200 and headers["content-type"] == "application/x-pki-message", body[:200]
        sp.verify_reply(body, self.chain_pem, self.folder)  # every reply is signed by the RA, under the CA
        return sp.read_reply(body)

    def enroll(self, device: sp.Device, cn: str, *, challenge: str | None, sans: list[str] = (),  # type: ignore[assignment]
               cipher: str = "aes128", digest: str = "sha256", transaction: str | None = None,
               get: bool = True) -> sp.Reply:
        csr = device.csr(cn, sans=list(sans), challenge=challenge)
        envelope = sp.envelope(csr, self.ra_pem, cipher, device.folder)
        message = sp.pki_message(device, sp_type("PKCSReq"), transaction or f"tx-{device.folder.name}", envelope,
                                 digest)
        return self.send(message, get=get)


def sp_type(name: str) -> str:
    return {"PKCSReq": "19", "RenewalReq": "17", "CertPoll": "20"}[name]


@pytest.fixture
def scep_server(store_path: Path, tmp_path: Path, cli: Any) -> Iterator[Any]:
    """``privca serve --scep`` as a real process (two forked workers) on a free loopback port, with an RA made by
    ``privca enroll ra``; each call starts one with the given switches."""
    result = cli("enroll", "ra", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    ra_serial = json.loads(result.stdout)["serial"]
    started: list[subprocess.Popen[bytes]] = []
    flags = {"allow_sha1": "--legacy-sha1", "allow_des": "--legacy-des", "approval_queue": "--approval-queue"}

    def start(**settings: bool) -> Scep:
        folder = tmp_path / f"scep{len(started) + 1}"
        folder.mkdir()
        log = folder / "serve.log"
        args = [sys.executable, "-m", "privca", "serve", "--store", str(store_path), "--port", "0", "--scep",
                "--enroll-profile", "cube", *[flags[name] for name, on in settings.items() if on]]
        with log.open("wb") as handle:
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=handle)
        started.append(process)
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        port = int(log.read_text().split("listening on http://127.0.0.1:")[1].split()[0])
        chain = folder / "chain.pem"
        for name in ("issuing-1", "root-1"):
            with chain.open("a") as handle:
                handle.write(cli("ca", "show", name, "--store", store_path, "--pem").stdout)
        ra = folder / "ra.pem"
        ra.write_text(cli("show", ra_serial, "--store", store_path, "--pem").stdout)
        for _ in range(100):  # the workers accept once they have started
            try:
                if sp.http("127.0.0.1", port, "GET", "/scep/cube?operation=GetCACaps")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        return Scep(store_path, folder, port, chain, ra)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def openssl_verify(chain: Path, cert: x509.Certificate, folder: Path, purpose: str = "sslserver") -> Any:
    path = folder / "issued.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", chain, path)


# --- GetCACaps and GetCACert ---------------------------------------------------------------------------------

def test_getcacaps_advertises_exactly_what_is_supported(scep_server: Any) -> None:
    scep = scep_server()
    status, headers, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube/pkiclient.exe?operation=GetCACaps")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert body.decode().split() == ["POSTPKIOperation", "Renewal", "SHA-256", "SHA-512", "AES", "DES3",
                                     "SCEPStandard"]
    legacy = scep_server(allow_sha1=True)
    _, _, body = sp.http("127.0.0.1", legacy.port, "GET", "/cgi-bin/pkiclient.exe?operation=GetCACaps")
    assert "SHA-1" in body.decode().split()  # only behind the switch


def test_getcacert_gives_ra_issuing_and_root_and_the_ra_chains_to_the_ca(scep_server: Any) -> None:
    scep = scep_server()
    status, headers, body = sp.http("127.0.0.1", scep.port, "GET",
                                    "/scep/cube/pkiclient.exe?operation=GetCACert&message=cube")
    assert status == 200 and headers["content-type"] == "application/x-x509-ca-ra-cert"
    p7 = scep.folder / "cacert.p7b"
    p7.write_bytes(body)
    printed = run_tool("openssl", "pkcs7", "-inform", "DER", "-in", p7, "-print_certs")
    certs = x509.load_pem_x509_certificates(printed.stdout.encode())
    # A SET OF in DER order: clients tell the RA from the CAs by what the certificates are, not by position.
    by_cn = {c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value: c for c in certs}
    assert sorted(by_cn) == ["Test UC Issuing CA 1", "Test UC Root CA", "privca SCEP RA"]
    ra = by_cn["privca SCEP RA"]
    eku = ra.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [oid.dotted_string for oid in eku] == ["1.3.6.1.5.5.7.3.28"]  # id-kp-cmcRA: no TLS use
    assert openssl_verify(scep.chain_pem, ra, scep.folder, "any").returncode == 0
    # Negative control: the RA is not a TLS server certificate.
    assert openssl_verify(scep.chain_pem, ra, scep.folder, "sslserver").returncode != 0


def test_getnextcacert_only_during_a_rotation_signed_by_the_current_ra(scep_server: Any, cli: Any,
                                                                       store_path: Path) -> None:
    """RFC 8894 4.7. No SCEP client in Debian asks for GetNextCACert, so the answer is checked the way a device
    would: the RA's signature with ``openssl cms -verify`` under the chain it trusts now, the content read by
    openssl and by asn1crypto as a certs-only SignedData."""
    from asn1crypto import cms

    scep = scep_server()
    # Negative control: no rotation, nothing advertised and nothing to give.
    _, _, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube?operation=GetCACaps")
    assert "GetNextCACert" not in body.decode().split()
    status, _, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube?operation=GetNextCACert&message=cube")
    assert status == 404 and b"no rotation" in body

    # The intermediate is rotated (and a new RA made) while the service still signs with issuing-1.
    assert cli("rotate", "intermediate", "--store", store_path).exit_code == 0
    assert cli("enroll", "ra", "--store", store_path, "--cn", "privca SCEP RA 2").exit_code == 0
    _, _, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube?operation=GetCACaps")
    assert body.decode().split()[0] == "GetNextCACert"
    status, headers, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube?operation=GetNextCACert&message=cube")
    assert status == 200 and headers["content-type"] == "application/x-x509-next-ca-cert"
    def cms_verify(der: bytes) -> Any:  # signed by the RA of the chain the device trusts now
        (scep.folder / "next.der").write_bytes(der)
        return run_tool("openssl", "cms", "-verify", "-inform", "DER", "-in", scep.folder / "next.der", "-CAfile",
                        scep.chain_pem, "-purpose", "any", "-binary", "-out", scep.folder / "next.p7")

    verified = cms_verify(body)
    assert verified.returncode == 0, verified.stderr
    content = (scep.folder / "next.p7").read_bytes()
    printed = run_tool("openssl", "pkcs7", "-inform", "DER", "-in", scep.folder / "next.p7", "-print_certs")
    names = sorted(str(c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)
                   for c in x509.load_pem_x509_certificates(printed.stdout.encode()))
    assert names == ["Test UC Issuing CA 2", "privca SCEP RA 2"]  # same root: only the new CA and its RA
    inner = cms.ContentInfo.load(content)["content"]
    assert inner["signer_infos"].native == [] and len(inner["certificates"]) == 2
    outer = cms.ContentInfo.load(body)["content"]
    assert outer["signer_infos"][0]["sid"].chosen["serial_number"].native == int(
        x509.load_pem_x509_certificate(scep.ra_pem.read_bytes()).serial_number)
    # Negative control on the checking side: a flipped signature byte does not verify.
    tampered = bytearray(body)
    tampered[-5] ^= 0x01
    assert cms_verify(bytes(tampered)).returncode != 0


def test_unknown_operation_and_garbage_are_refused_plainly(scep_server: Any) -> None:
    scep = scep_server()
    before = scep.rows()
    status, _, body = sp.http("127.0.0.1", scep.port, "GET", "/scep/cube/pkiclient.exe?operation=GetCRLs")
    assert status == 400 and b"not supported" in body
    status, _, body = sp.http("127.0.0.1", scep.port, "GET",
                              "/scep/cube/pkiclient.exe?operation=PKIOperation&message=%21%21%21")
    assert status == 400 and b"base64" in body
    status, _, body = sp.http("127.0.0.1", scep.port, "POST", "/scep/cube?operation=PKIOperation", b"\x30\x03junk",
                              version="1.1")
    assert status == 400 and b"pkiMessage" in body
    assert scep.rows() == before


# --- micromdm scepclient ----------------------------------------------------------------------------------------

def scepclient(scep: Scep, folder: Path, *args: str) -> Any:
    assert SCEPCLIENT
    return run_tool(SCEPCLIENT, "-server-url", scep.url, "-private-key", folder / "key.pem", "-certificate",
                    folder / "cert.pem", *args, timeout=120)


def test_scepclient_enrolls_with_a_challenge_bound_to_names_then_renews(scep_server: Any, cli: Any,
                                                                         tmp_path: Path) -> None:
    scep = scep_server(allow_sha1=True, allow_des=True)
    password = scep.challenge(cli, names="cube1.example.com,192.0.2.10")
    folder = tmp_path / "scepclient"
    folder.mkdir()
    result = scepclient(scep, folder, "-challenge", password, "-cn", "cube1.example.com")
    assert result.returncode == 0 and "SUCCESS" in result.stdout + result.stderr, result.stderr
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    # scepclient cannot put SANs in its CSR: the challenge's names become the SANs, as IOS's subject-alt-name would.
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(n.value) for n in sans) == ["192.0.2.10", "cube1.example.com"]
    assert openssl_verify(scep.chain_pem, cert, folder, "sslserver").returncode == 0
    assert openssl_verify(scep.chain_pem, cert, folder, "sslclient").returncode == 0
    serial = format(cert.serial_number, "x")
    row = scep.certificate_row(serial)
    assert row["channel"] == "scep" and row["profile"] == "cube"
    assert [e["channel"] for e in scep.events("issue") if e["serial"] == serial] == ["scep"]

    # Renewal: RenewalReq signed with the current certificate and key, no challenge.
    old_serial = serial
    result = scepclient(scep, folder, "-cn", "cube1.example.com")
    assert result.returncode == 0, result.stderr
    renewed = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    serial = format(renewed.serial_number, "x")
    assert serial != old_serial
    assert scep.certificate_row(serial)["replaces"] == old_serial
    assert [e["channel"] for e in scep.events("renew")] == ["scep"]
    assert renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == sans


def test_scepclient_reusing_its_challenge_is_refused(scep_server: Any, cli: Any, tmp_path: Path) -> None:
    scep = scep_server(allow_sha1=True, allow_des=True)
    password = scep.challenge(cli, names="cube1.example.com")
    first = tmp_path / "first"
    first.mkdir()
    assert scepclient(scep, first, "-challenge", password, "-cn", "cube1.example.com").returncode == 0
    before = scep.rows()
    second = tmp_path / "second"
    second.mkdir()
    result = scepclient(scep, second, "-challenge", password, "-cn", "cube1.example.com")
    assert result.returncode != 0 and "badRequest" in result.stdout + result.stderr
    assert not (second / "cert.pem").exists()
    after = scep.rows()
    assert (after["certificates"], after["enroll_requests"], after["events"]) == (
        before["certificates"], before["enroll_requests"], before["events"] + 1)
    assert "already used" in scep.events("enroll-refuse")[-1]["reason"]


def test_scepclient_without_the_legacy_switches_is_refused_bad_alg(scep_server: Any, cli: Any,
                                                                   tmp_path: Path) -> None:
    """scepclient signs with SHA-1 and encrypts with DES: neither is accepted unless the operator says so."""
    scep = scep_server()
    password = scep.challenge(cli, names="cube1.example.com")
    folder = tmp_path / "nolegacy"
    folder.mkdir()
    result = scepclient(scep, folder, "-challenge", password, "-cn", "cube1.example.com")
    assert result.returncode != 0 and "badAlg" in result.stdout + result.stderr
    assert scep.rows()["certificates"] == 1  # the RA only
    assert "sha1" in scep.events("enroll-refuse")[-1]["reason"]
    des_only = scep_server(allow_sha1=True)
    result = run_tool(SCEPCLIENT or "scepclient", "-server-url", des_only.url, "-private-key", folder / "key.pem",
                      "-certificate", folder / "cert.pem", "-challenge", password, "-cn", "cube1.example.com",
                      timeout=120)
    assert result.returncode != 0 and "badAlg" in result.stdout + result.stderr
    assert "des" in scep.events("enroll-refuse")[-1]["reason"]


# --- strongSwan pki --scep ---------------------------------------------------------------------------------------

def strongswan_scep(scep: Scep, folder: Path, key: Path, cn: str, *args: str) -> Any:
    assert STRONGSWAN_PKI
    out = folder / f"{cn}.pem"
    result = run_tool(STRONGSWAN_PKI, "--scep", "--url", scep.url, "--in", key, "--dn", f"CN={cn}", "--san", cn,
                      "--cacert-enc", scep.ra_pem, "--cacert-sig", scep.ra_pem, "--cacert", scep.chain_pem,
                      "--outform", "pem", "--maxpolltime", "5", "--interval", "1", *args, timeout=120)
    return result, out if result.returncode else out.write_text(result.stdout) and out


def strongswan_key(folder: Path, name: str) -> Path:
    assert STRONGSWAN_PKI
    path = folder / name
    path.write_text(run_tool(STRONGSWAN_PKI, "--gen", "--type", "rsa", "--size", "2048", "--outform", "pem",
                             check=True).stdout)
    return path


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_strongswan_enrolls_with_3des_and_renews_with_a_new_key(scep_server: Any, cli: Any, tmp_path: Path,
                                                                 digest: str) -> None:
    """strongSwan's pki --scep: SANs in its CSR, 3DES content encryption, SHA-256 or SHA-1 signatures. (AES is
    not exercised with it: strongSwan 5.9.8 tests its GetCACaps flags with enum values, not bits, and never
    finds AES; the IOS-shaped client covers AES.)"""
    scep = scep_server(allow_sha1=True)
    key = strongswan_key(tmp_path, "device.key")
    password = scep.challenge(cli)
    result, issued = strongswan_scep(scep, tmp_path, key, "cube30.example.com", "--password", password,
                                     "--cipher", "des3", "--digest", digest)
    assert result.returncode == 0, result.stderr[-2000:]
    cert = x509.load_pem_x509_certificate(issued.read_bytes())
    assert openssl_verify(scep.chain_pem, cert, tmp_path).returncode == 0
    old_serial = format(cert.serial_number, "x")
    # Renewal: a new key, the request signed with the current certificate and its key.
    new_key = strongswan_key(tmp_path, "device-new.key")
    result = run_tool(STRONGSWAN_PKI, "--scep", "--url", scep.url, "--in", new_key, "--dn", "CN=cube30.example.com",
                      "--san", "cube30.example.com", "--cacert-enc", scep.ra_pem, "--cacert-sig", scep.ra_pem,
                      "--cacert", scep.chain_pem, "--cipher", "des3", "--digest", digest, "--cert", issued, "--key",
                      key, "--outform", "pem", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    renewed = x509.load_pem_x509_certificate(result.stdout.encode())
    assert renewed.public_key() != cert.public_key()
    assert scep.certificate_row(format(renewed.serial_number, "x"))["replaces"] == old_serial
    # Negative control: the same certificate cannot renew twice.
    again = run_tool(STRONGSWAN_PKI, "--scep", "--url", scep.url, "--in", strongswan_key(tmp_path, "third.key"),
                     "--dn", "CN=cube30.example.com", "--san", "cube30.example.com", "--cacert-enc", scep.ra_pem,
                     "--cacert-sig", scep.ra_pem, "--cacert", scep.chain_pem, "--cipher", "des3", "--digest", digest,
                     "--cert", issued, "--key", key, "--outform", "pem", timeout=120)
    assert again.returncode != 0 and "already renewed" in scep.events("enroll-refuse")[-1]["reason"]


# --- certmonger scep-submit -------------------------------------------------------------------------------------

def test_certmonger_scep_submit_getcacaps_getcacert_and_pkioperation(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    caps = run_tool(SCEP_SUBMIT, "-u", scep.url, "-c")
    assert caps.returncode == 0 and "POSTPKIOperation" in caps.stdout.split()
    certs = run_tool(SCEP_SUBMIT, "-u", scep.url, "-C")
    assert certs.returncode == 0
    listed = x509.load_pem_x509_certificates(certs.stdout.encode())
    assert listed[0].public_bytes(Encoding.PEM) == scep.ra_pem.read_bytes()  # RA first, then the CAs
    assert len(listed) == 3

    password = scep.challenge(cli)
    device = scep.device("cube5.example.com")
    csr = device.csr("cube5.example.com", sans=["cube5.example.com"], challenge=password)
    message = sp.pki_message(device, "19", "certmonger-1", sp.envelope(csr, scep.ra_pem, "aes256", device.folder),
                             "sha256")
    request = device.folder / "request.pem"
    import base64

    request.write_text("-----BEGIN PKCS7-----\n" + base64.encodebytes(message).decode() + "-----END PKCS7-----\n")
    issuing = scep.folder / "issuing.pem"
    issuing.write_text(cli("ca", "show", "issuing-1", "--store", scep.store_path, "--pem").stdout)
    # scep-submit verifies the reply's signature with the RA certificate before it prints the envelope.
    result = run_tool(SCEP_SUBMIT, "-u", scep.url, "-r", scep.ra_pem, "-I", scep.chain_pem, "-N", issuing, "-p",
                      request)
    assert result.returncode == 0, result.stdout + result.stderr
    envelope = base64.b64decode("".join(line for line in result.stdout.splitlines() if "-----" not in line))
    issued = sp.open_reply(envelope, device)
    assert issued[0].subject.rfc4514_string() == "CN=cube5.example.com"
    # Negative control: the same message again is answered from the ledger (same certificate), and a message
    # with a used challenge under a new transaction is refused, which scep-submit reports as a rejection.
    again = run_tool(SCEP_SUBMIT, "-u", scep.url, "-r", scep.ra_pem, "-I", scep.chain_pem, "-N", issuing, "-p",
                     request)
    assert again.returncode == 0
    message = sp.pki_message(device, "19", "certmonger-2", sp.envelope(csr, scep.ra_pem, "aes256", device.folder),
                             "sha256")
    request.write_text("-----BEGIN PKCS7-----\n" + base64.encodebytes(message).decode() + "-----END PKCS7-----\n")
    refused = run_tool(SCEP_SUBMIT, "-u", scep.url, "-r", scep.ra_pem, "-I", scep.chain_pem, "-N", issuing, "-p",
                       request)
    assert refused.returncode != 0


# --- IOS-shaped requests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cipher", "digest"), [("aes128", "sha256"), ("aes256", "sha256"), ("des3", "sha256"),
                                                ("des3", "sha1"), ("aes128", "sha1"), ("aes256", "sha512")])
def test_ios_shaped_get_over_http10(scep_server: Any, cli: Any, cipher: str, digest: str) -> None:
    scep = scep_server(allow_sha1=True)
    password = scep.challenge(cli)
    device = scep.device("cube7.example.com")
    reply = scep.enroll(device, "cube7.example.com", challenge=password, sans=["cube7.example.com"], cipher=cipher,
                        digest=digest)
    assert (reply.status, reply.message_type, reply.transaction_id) == ("0", "3", f"tx-{device.folder.name}")
    assert reply.envelope is not None
    # The reply is encrypted with the client's own cipher (IOS fails with E_ENCRYPT_ALG_NOT_SUPPORTED otherwise).
    envelope = scep.folder / "envelope.der"
    envelope.write_bytes(reply.envelope)
    shown = run_tool("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", envelope).stdout
    expected = {"aes128": "aes-128-cbc", "aes256": "aes-256-cbc", "des3": "des-ede3-cbc"}[cipher]
    assert f"algorithm: {expected}" in shown
    issued = sp.open_reply(reply.envelope, device)[0]
    assert openssl_verify(scep.chain_pem, issued, device.folder).returncode == 0


def test_post_pkioperation_and_retry_answer_the_same(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    password = scep.challenge(cli)
    device = scep.device("cube8.example.com")
    csr = device.csr("cube8.example.com", sans=["cube8.example.com"], challenge=password)
    message = sp.pki_message(device, "19", "retry-1", sp.envelope(csr, scep.ra_pem, "aes128", device.folder),
                             "sha256")
    first = scep.send(message, get=False)
    rows = scep.rows()
    second = scep.send(message, get=False)  # IOS resends when a reply is lost: same transaction, same answer
    assert first.status == second.status == "0"
    assert sp.open_reply(first.envelope or b"", device)[0] == sp.open_reply(second.envelope or b"", device)[0]
    assert scep.rows() == rows


def test_des_and_sha1_need_the_legacy_switches(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    password = scep.challenge(cli)
    before = scep.rows()
    for cipher, digest in (("des", "sha256"), ("aes128", "sha1")):
        device = scep.device("cube9.example.com")
        reply = scep.enroll(device, "cube9.example.com", challenge=password, sans=["cube9.example.com"],
                            cipher=cipher, digest=digest)
        assert (reply.status, reply.fail_info) == ("2", "0")  # FAILURE, badAlg
    legacy = scep_server(allow_des=True)
    device = legacy.device("cube9.example.com")
    reply = legacy.enroll(device, "cube9.example.com", challenge=password, sans=["cube9.example.com"], cipher="des")
    assert reply.status == "0"
    assert scep.rows()["certificates"] == before["certificates"] + 1


# --- refusals: nothing recorded but the refusal event -------------------------------------------------------------

def refused_with(scep: Scep, reply: sp.Reply, before: dict[str, int], fail_info: str, reason: str) -> None:
    assert (reply.status, reply.fail_info) == ("2", fail_info)
    after = scep.rows()
    assert after == {**before, "events": before["events"] + 1}
    event = scep.events()[-1]
    assert event["action"] == "enroll-refuse" and reason in event["reason"], event


def test_wrong_expired_and_other_profile_challenges_are_refused(scep_server: Any, cli: Any, store_path: Path) -> None:
    scep = scep_server()
    device = scep.device("cube10.example.com")
    before = scep.rows()
    reply = scep.enroll(device, "cube10.example.com", challenge="NOTAREALPASSWORD", sans=["cube10.example.com"],
                        transaction="t-wrong")
    refused_with(scep, reply, before, "2", "wrong challenge password")

    other = scep.challenge(cli, profile="cucm")
    before = scep.rows()
    reply = scep.enroll(device, "cube10.example.com", challenge=other, sans=["cube10.example.com"],
                        transaction="t-profile")
    refused_with(scep, reply, before, "2", "for profile cucm, not cube")

    expired = scep.challenge(cli, expires="1m")
    with sqlite3.connect(store_path / "privca.db") as conn:  # a minute later, as the clock would have it
        conn.execute("UPDATE enroll_challenges SET expires_at = '2000-01-01T00:00:00Z' WHERE used_at IS NULL "
                     "AND profile = 'cube'")
    before = scep.rows()
    reply = scep.enroll(device, "cube10.example.com", challenge=expired, sans=["cube10.example.com"],
                        transaction="t-expired")
    refused_with(scep, reply, before, "2", "expired")
    # No challenge at all, and no approval queue: refused.
    before = scep.rows()
    reply = scep.enroll(device, "cube10.example.com", challenge=None, sans=["cube10.example.com"],
                        transaction="t-none")
    refused_with(scep, reply, before, "2", "no challenge password")
    assert all(PASSWORD_NOT_IN(event, (other, expired)) for event in scep.events())


def PASSWORD_NOT_IN(event: dict[str, Any], passwords: tuple[str, ...]) -> bool:
    text = json.dumps(event)
    return not any(password in text for password in passwords)


def test_names_outside_a_bound_challenge_and_profile_refusals(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    password = scep.challenge(cli, names="cube11.example.com")
    device = scep.device("cube11.example.com")
    before = scep.rows()
    reply = scep.enroll(device, "cube11.example.com", challenge=password,
                        sans=["cube11.example.com", "intruder.example.com"], transaction="t-names")
    refused_with(scep, reply, before, "2", "intruder.example.com")
    # The profile still decides: cube needs SANs, and an unbound challenge supplies none.
    unbound = scep.challenge(cli)
    before = scep.rows()
    reply = scep.enroll(device, "cube11.example.com", challenge=unbound, transaction="t-nosan")
    refused_with(scep, reply, before, "2", "no subjectAltName")
    # The challenge refused for policy is still unused: the same device fixes its CSR and enrolls.
    reply = scep.enroll(device, "cube11.example.com", challenge=unbound, sans=["cube11.example.com"],
                        transaction="t-fixed")
    assert reply.status == "0"


def test_tampered_signature_is_refused_bad_message_check(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    password = scep.challenge(cli)
    device = scep.device("cube12.example.com")
    csr = device.csr("cube12.example.com", sans=["cube12.example.com"], challenge=password)
    message = bytearray(sp.pki_message(device, "19", "tampered-1", sp.envelope(csr, scep.ra_pem, "aes128",
                                                                             device.folder), "sha256"))
    message[-5] ^= 0x01  # inside the signature value, the last field
    before = scep.rows()
    reply = scep.send(bytes(message))
    refused_with(scep, reply, before, "1", "signature does not verify")
    # Negative control of the control: the untampered message is accepted.
    message[-5] ^= 0x01
    assert scep.send(bytes(message)).status == "0"


def test_revoked_certificate_cannot_renew(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    password = scep.challenge(cli)
    device = scep.device("cube13.example.com")
    reply = scep.enroll(device, "cube13.example.com", challenge=password, sans=["cube13.example.com"])
    current = sp.open_reply(reply.envelope or b"", device)[0]
    serial = format(current.serial_number, "x")

    def renewal(transaction: str) -> sp.Reply:
        csr = device.csr("cube13.example.com")
        envelope = sp.envelope(csr, scep.ra_pem, "aes128", device.folder)
        return scep.send(sp.pki_message(device, "17", transaction, envelope, "sha256", signer=current))

    result = cli("revoke", serial, "--store", scep.store_path, "--reason", "keyCompromise")
    assert result.exit_code == 0, result.stderr
    before = scep.rows()
    refused_with(scep, renewal("renew-revoked"), before, "4", "is revoked")
    # Negative control: a valid certificate renews the same way.
    other = scep.device("cube14.example.com")
    fresh = scep.challenge(cli)
    reply = scep.enroll(other, "cube14.example.com", challenge=fresh, sans=["cube14.example.com"])
    valid = sp.open_reply(reply.envelope or b"", other)[0]
    csr = other.csr("cube14.example.com")
    renewed = scep.send(sp.pki_message(other, "17", "renew-ok", sp.envelope(csr, scep.ra_pem, "aes128",
                                                                            other.folder), "sha256", signer=valid))
    assert renewed.status == "0"
    new = sp.open_reply(renewed.envelope or b"", other, signer=valid)[0]
    assert scep.certificate_row(format(new.serial_number, "x"))["replaces"] == format(valid.serial_number, "x")


def test_renewal_with_other_names_or_profile_is_refused(scep_server: Any, cli: Any) -> None:
    scep = scep_server()
    device = scep.device("cube15.example.com")
    reply = scep.enroll(device, "cube15.example.com", challenge=scep.challenge(cli), sans=["cube15.example.com"])
    current = sp.open_reply(reply.envelope or b"", device)[0]
    csr = device.csr("cube15.example.com", sans=["cube15.example.com", "other.example.com"])
    before = scep.rows()
    reply = scep.send(sp.pki_message(device, "17", "renew-names", sp.envelope(csr, scep.ra_pem, "aes128",
                                                                              device.folder), "sha256",
                                     signer=current))
    refused_with(scep, reply, before, "2", "a renewal keeps")
    status, _, body = sp.http("127.0.0.1", scep.port, "POST", "/scep/cucm?operation=PKIOperation",
                              sp.pki_message(device, "17", "renew-profile",
                                             sp.envelope(device.csr("cube15.example.com"), scep.ra_pem, "aes128",
                                                         device.folder), "sha256", signer=current), version="1.1")
    before_events = before["events"] + 1
    reply = sp.read_reply(body)
    assert (status, reply.status, reply.fail_info) == (200, "2", "2")
    assert scep.rows()["events"] == before_events + 1
    assert "issued under profile cube, not cucm" in scep.events()[-1]["reason"]


# --- the approval queue -----------------------------------------------------------------------------------------

def test_approval_queue_pending_then_approve_then_certpoll(scep_server: Any, cli: Any) -> None:
    scep = scep_server(approval_queue=True)
    device = scep.device("cube16.example.com")
    reply = scep.enroll(device, "cube16.example.com", challenge=None, transaction="queued-1")
    assert reply.status == "3"  # PENDING
    listed = cli("enroll", "pending", "--store", scep.store_path, "--json")
    pending = json.loads(listed.stdout)["requests"]
    assert [(p["transaction_id"], p["subject"], p["sans"]) for p in pending] == [
        ("queued-1", "CN=cube16.example.com", [])]
    issuing = x509.load_pem_x509_certificate(scep.chain_pem.read_bytes())

    def poll() -> sp.Reply:
        content = sp.issuer_and_subject(issuing, device)
        return scep.send(sp.pki_message(device, "20", "queued-1", sp.envelope(content, scep.ra_pem, "aes128",
                                                                              device.folder), "sha256"))

    assert poll().status == "3"
    # cube needs SANs and the CSR has none: approving without names is refused, naming the problem.
    refused = cli("enroll", "approve", str(pending[0]["id"]), "--store", scep.store_path)
    assert refused.exit_code != 0 and "subjectAltName" in refused.stderr
    assert poll().status == "3"
    approved = cli("enroll", "approve", str(pending[0]["id"]), "--store", scep.store_path, "--names",
                   "cube16.example.com")
    assert approved.exit_code == 0, approved.stderr
    reply = poll()
    assert reply.status == "0"
    issued = sp.open_reply(reply.envelope or b"", device)[0]
    assert [str(n.value) for n in issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value] == [
        "cube16.example.com"]
    assert [e["action"] for e in scep.events() if e["action"].startswith("enroll-")][-2:] == [
        "enroll-pending", "enroll-approve"]
    assert json.loads(cli("enroll", "pending", "--store", scep.store_path, "--json").stdout)["requests"] == []
    assert poll().status == "0"  # polling again gives the same certificate


def test_approval_queue_reject(scep_server: Any, cli: Any) -> None:
    scep = scep_server(approval_queue=True)
    device = scep.device("cube17.example.com")
    assert scep.enroll(device, "cube17.example.com", challenge=None, transaction="queued-2").status == "3"
    request_id = json.loads(cli("enroll", "pending", "--store", scep.store_path, "--json").stdout)["requests"][0]["id"]
    rejected = cli("enroll", "reject", str(request_id), "--store", scep.store_path)
    assert rejected.exit_code == 0
    before = scep.rows()
    issuing = x509.load_pem_x509_certificate(scep.chain_pem.read_bytes())
    content = sp.issuer_and_subject(issuing, device)
    reply = scep.send(sp.pki_message(device, "20", "queued-2", sp.envelope(content, scep.ra_pem, "aes128",
                                                                          device.folder), "sha256"))
    assert (reply.status, reply.fail_info) == ("2", "2")
    assert scep.rows() == before
    again = cli("enroll", "reject", str(request_id), "--store", scep.store_path)
    assert again.exit_code == 16 and "already rejected" in again.stderr


# --- the CLI ----------------------------------------------------------------------------------------------------

def test_challenge_is_printed_once_stored_hashed(cli: Any, store_path: Path) -> None:
    result = cli("enroll", "challenge", "--store", store_path, "--profile", "cube", "--names", "cube1.example.com")
    assert result.exit_code == 0
    password = result.stdout.strip()
    assert len(password) == 24 and "cannot be shown again" in result.stderr
    raw = b"".join(path.read_bytes() for path in store_path.rglob("*") if path.is_file())
    assert password.encode() not in raw
    import hashlib

    with sqlite3.connect(store_path / "privca.db") as conn:
        stored = conn.execute("SELECT sha256, names FROM enroll_challenges").fetchall()
    assert stored == [(hashlib.sha256(password.encode()).hexdigest(), '["cube1.example.com"]')]


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "nosuch"], "profile 'nosuch': unknown"),
    (["--profile", "cube", "--expires", "90d"], "between 1m and 30d"),
    (["--profile", "cube", "--expires", "soon"], "e.g. 30m, 24h or 7d"),
    (["--profile", "cube", "--names", "not a name"], "--names not a name"),
    (["--profile", "scep-ra"], "made by privca enroll ra"),
])
def test_challenge_bad_input(cli: Any, store_path: Path, args: list[str], message: str) -> None:
    from conftest import snapshot

    before = snapshot(store_path)
    result = cli("enroll", "challenge", "--store", store_path, *args)
    assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(store_path) == before


def test_ra_key_is_encrypted_and_owner_only(cli: Any, store_path: Path) -> None:
    result = cli("enroll", "ra", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    key = Path(record["key_path"])
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    verified = cli("verify", "--store", store_path)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
