"""An independent SCEP client for the tests, shaped like IOS-XE's requests.

It shares no code with privca: the pkiMessage SignedData is built with pyasn1 and pyasn1-alt-modules (RFC 5652 and
RFC 8894 modules, a different ASN.1 library from the one privca uses), the pkcsPKIEnvelope is made by
``openssl cms -encrypt`` (AES-128, AES-256, 3DES or DES), and replies are checked with ``openssl cms -verify`` and
opened with ``openssl cms -decrypt``. Requests go out as IOS sends them: GET with the base64 message in the query
(URL-encoded, with %0A line breaks) over HTTP/1.0 with IOS's User-Agent, or POST.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AttributeOID, NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc5280, rfc5652, rfc8894

IOS_USER_AGENT = "Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)"
DIGEST_OIDS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1", "sha512": "2.16.840.1.101.3.4.2.3"}
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}
OPENSSL_CIPHERS = {"aes128": "-aes128", "aes256": "-aes256", "des3": "-des3", "des": "-des"}
# OpenSSL 3 keeps single DES in its legacy provider; loading it (with the default one) lets every cipher through.
LEGACY = ("-provider", "legacy", "-provider", "default")


@dataclass
class Device:
    """A device's key and the self-signed certificate it signs its first request with (RFC 8894 2.3)."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    folder: Path

    @classmethod
    def make(cls, folder: Path, cn: str, key: rsa.RSAPrivateKey | None = None) -> "Device":
        key = key or rsa.generate_private_key(65537, 2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True)
        return cls(key, cert, folder)

    def csr(self, cn: str, *, sans: list[str] = (), challenge: str | None = None) -> bytes:  # type: ignore[assignment]
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False)
        if challenge is not None:
            builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def write(self, signer: x509.Certificate | None = None) -> tuple[Path, Path]:
        cert_path, key_path = self.folder / "signer.pem", self.folder / "key.pem"
        cert_path.write_bytes((signer or self.cert).public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        return cert_path, key_path


def envelope(content: bytes, recipient_pem: Path, cipher: str, folder: Path) -> bytes:
    """pkcsPKIEnvelope: EnvelopedData made by OpenSSL for the RA certificate."""
    plain = folder / "envelope-in.der"
    plain.write_bytes(content)
    result = subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-outform", "DER", OPENSSL_CIPHERS[cipher],
                             *LEGACY, "-in", str(plain), str(recipient_pem)], capture_output=True, check=True)
    return result.stdout


def _attribute(oid: univ.ObjectIdentifier | str, value: object) -> rfc5652.Attribute:
    attribute = rfc5652.Attribute()
    attribute["attrType"] = univ.ObjectIdentifier(oid) if isinstance(oid, str) else oid
    attribute["attrValues"].append(univ.Any(encoder.encode(value)))
    return attribute


def _algorithm(oid: str, null: bool) -> rfc5280.AlgorithmIdentifier:
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(oid)
    if null:
        algorithm["parameters"] = univ.Any(encoder.encode(univ.Null("")))
    return algorithm


def pki_message(device: Device, message_type: str, transaction_id: str, content: bytes, digest: str, *,
                signer: x509.Certificate | None = None, nonce: bytes | None = None) -> bytes:
    """SignedData around ``content`` with SCEP's signed attributes, signed with the device key."""
    signer = signer or device.cert
    cert_der = signer.public_bytes(serialization.Encoding.DER)
    cert, _ = decoder.decode(cert_der, asn1Spec=rfc5280.Certificate())
    attributes = rfc5652.SignedAttributes()
    for item in (
        _attribute(rfc5652.id_contentType, rfc5652.id_data),
        _attribute(rfc5652.id_messageDigest, univ.OctetString(hashlib.new(digest, content).digest())),
        _attribute(rfc8894.id_messageType, char.PrintableString(message_type)),
        _attribute(rfc8894.id_transactionID, char.PrintableString(transaction_id)),
        _attribute(rfc8894.id_senderNonce, univ.OctetString(nonce or os.urandom(16))),
    ):
        attributes.append(item)
    to_sign = encoder.encode(attributes)  # DER SET OF: what the signature covers (RFC 5652 5.4)
    signature = device.key.sign(to_sign, padding.PKCS1v15(), HASHES[digest]())

    signer_info = rfc5652.SignerInfo()
    signer_info["version"] = 1
    sid = signer_info["sid"]
    sid["issuerAndSerialNumber"]["issuer"] = cert["tbsCertificate"]["issuer"]
    sid["issuerAndSerialNumber"]["serialNumber"] = cert["tbsCertificate"]["serialNumber"]
    signer_info["digestAlgorithm"] = _algorithm(DIGEST_OIDS[digest], False)
    # Re-decode the SET OF into the [0]-tagged field so the bytes sent are those signed.
    tagged, _ = decoder.decode(to_sign, asn1Spec=rfc5652.SignedAttributes())
    for position, item in enumerate(tagged):
        signer_info["signedAttrs"][position] = item
    signer_info["signatureAlgorithm"] = _algorithm("1.2.840.113549.1.1.1", True)
    signer_info["signature"] = signature

    signed = rfc5652.SignedData()
    signed["version"] = 1
    signed["digestAlgorithms"].append(_algorithm(DIGEST_OIDS[digest], False))
    signed["encapContentInfo"]["eContentType"] = rfc5652.id_data
    signed["encapContentInfo"]["eContent"] = content
    choice = rfc5652.CertificateChoices()
    choice["certificate"] = cert
    signed["certificates"].append(choice)
    signed["signerInfos"].append(signer_info)
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_signedData
    info["content"] = univ.Any(encoder.encode(signed))
    return encoder.encode(info)


def issuer_and_subject(issuer: x509.Certificate, device: Device) -> bytes:
    """CertPoll content (RFC 8894 3.3.3): the CA's name and the device's."""
    value = rfc8894.IssuerAndSubject()
    value["issuer"], _ = decoder.decode(issuer.subject.public_bytes(), asn1Spec=rfc5280.Name())
    value["subject"], _ = decoder.decode(device.cert.subject.public_bytes(), asn1Spec=rfc5280.Name())
    return encoder.encode(value)


def http(host: str, port: int, method: str, path: str, body: bytes = b"", version: str = "1.0") -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (HTTP/1.0 by default, as IOS sends SCEP), read to the end."""
    head = [f"{method} {path} HTTP/{version}", f"Host: {host}:{port}", f"User-Agent: {IOS_USER_AGENT}"]
    if method == "POST":
        head += ["Content-Type: application/x-pki-message", f"Content-Length: {len(body)}"]
    if version == "1.1":
        head.append("Connection: close")
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return int(lines[0].split()[1]), headers, payload


def get_path(base_path: str, message: bytes) -> str:
    """PKIOperation as IOS sends it: GET, base64 with line breaks, URL-encoded (%0A, %2B, %2F, %3D)."""
    text = base64.encodebytes(message).decode()  # 76-character lines, as IOS's base64 has
    return f"{base_path}?operation=PKIOperation&message={quote(text, safe='')}"


@dataclass
class Reply:
    status: str  # pkiStatus: 0 SUCCESS, 2 FAILURE, 3 PENDING
    fail_info: str | None
    transaction_id: str
    recipient_nonce: bytes
    message_type: str
    envelope: bytes | None
    der: bytes


def read_reply(der: bytes) -> Reply:
    """A CertRep decoded with pyasn1: the signed attributes and the envelope."""
    info, _ = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    signed, _ = decoder.decode(info["content"], asn1Spec=rfc5652.SignedData())
    values: dict[str, bytes] = {}
    for attribute in signed["signerInfos"][0]["signedAttrs"]:
        values[str(attribute["attrType"])] = bytes(attribute["attrValues"][0])
    def text(oid: univ.ObjectIdentifier) -> str | None:
        raw = values.get(str(oid))
        return str(decoder.decode(raw, asn1Spec=char.PrintableString())[0]) if raw is not None else None
    def octets(oid: univ.ObjectIdentifier) -> bytes:
        return bytes(decoder.decode(values[str(oid)], asn1Spec=univ.OctetString())[0])
    content = signed["encapContentInfo"]["eContent"]
    return Reply(str(text(rfc8894.id_pkiStatus)), text(rfc8894.id_failInfo), str(text(rfc8894.id_transactionID)),
                 octets(rfc8894.id_recipientNonce), str(text(rfc8894.id_messageType)),
                 bytes(content) if content.isValue else None, der)


def verify_reply(der: bytes, ca_file: Path, folder: Path) -> bytes:
    """``openssl cms -verify`` of a CertRep against the CA chain (the RA signs it); returns the content."""
    path = folder / "reply.der"
    path.write_bytes(der)
    detached: list[str] = []
    if read_reply(der).envelope is None:  # FAILURE and PENDING carry no content: the signature covers none
        empty = folder / "empty"
        empty.write_bytes(b"")
        detached = ["-content", str(empty)]
    result = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path), "-CAfile",
                             str(ca_file), "-purpose", "any", "-binary", *detached], capture_output=True)
    if result.returncode != 0:
        raise AssertionError(f"openssl cms -verify failed: {result.stderr.decode()}")
    return result.stdout


def open_reply(envelope_der: bytes, device: Device, signer: x509.Certificate | None = None) -> list[x509.Certificate]:
    """``openssl cms -decrypt`` of a CertRep's envelope with the device key (addressed to the certificate the
    request was signed with); the certificates inside."""
    cert_path, key_path = device.write(signer)
    path = device.folder / "reply-envelope.der"
    path.write_bytes(envelope_der)
    result = subprocess.run(["openssl", "cms", "-decrypt", *LEGACY, "-inform", "DER", "-in", str(path), "-recip",
                             str(cert_path), "-inkey", str(key_path), "-binary"], capture_output=True, check=True)
    inner = device.folder / "reply-certs.p7b"
    inner.write_bytes(result.stdout)
    printed = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", str(inner), "-print_certs"],
                             capture_output=True, check=True, text=True)
    return x509.load_pem_x509_certificates(printed.stdout.encode())
