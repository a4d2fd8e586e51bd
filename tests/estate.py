"""A fixture estate for audit and check tests: certificates with known properties, built from scratch.

The "public" hierarchy is a root made here; tests register it as an extra public store, the same way an
administrator adds a root store with --public-roots, so nothing depends on a real CA's keys. Its intermediates
carry the organisation names of real public CAs, which is how the shipped trust data recognises a CA's cut-off.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH
BOTH = [SERVER, CLIENT]


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def name(cn: str, org: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attributes)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


_RSA_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA-2048 key for the whole run: RSA generation is slow and these tests are not about keys."""
    if not _RSA_KEYS:
        _RSA_KEYS.append(rsa.generate_private_key(65537, 2048))
    return _RSA_KEYS[0]


def make_cert(
    subject: x509.Name,
    *,
    now: datetime,
    issuer: Issued | None = None,
    key: Any = None,
    ca: bool = False,
    eku: list[Any] | None = None,
    sans: list[str] | None = None,
    ip_sans: list[str] | None = None,
    days_left: int = 300,
    days_old: int = 30,
    issuer_name: x509.Name | None = None,
    signing_key: Any = None,
    key_usage: dict[str, bool] | None = None,
) -> Issued:
    """A certificate valid from ``days_old`` ago to ``days_left`` from ``now``.

    ``issuer_name``/``signing_key`` forge a broken link: the issuer's name, signed by another key.
    """
    key = key or ec_key()
    issuer_cert_name = issuer_name or (issuer.cert.subject if issuer else subject)
    signer = signing_key or (issuer.key if issuer else key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_cert_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=days_old)).not_valid_after(now + timedelta(days=days_left))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None and signing_key is None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    usage = {"digital_signature": True, "content_commitment": False, "key_encipherment": not ca and isinstance(
        key, rsa.RSAPrivateKey), "data_encipherment": False, "key_agreement": False, "key_cert_sign": ca,
        "crl_sign": ca, "encipher_only": False, "decipher_only": False}
    usage.update(key_usage or {})
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (sans or [])]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_sans or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    return Issued(cert, key)


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")  # OID 1.2.840.113549.1.1.11 sha256WithRSAEncryption
_SHA1_RSA = bytes.fromhex("2a864886f70d010105")  # OID 1.2.840.113549.1.1.5 sha1WithRSAEncryption


def resign_sha1(issued: Issued, issuer: Issued) -> Issued:
    """The same certificate signed with SHA-1 by an RSA issuer. cryptography no longer signs certificates with
    SHA-1, so the TBS is re-signed by hand: both OIDs have the same length, so only the signature changes size."""
    from cryptography.hazmat.primitives.asymmetric import padding

    tbs = issued.cert.tbs_certificate_bytes.replace(_SHA256_RSA, _SHA1_RSA)
    signature = issuer.key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _der(0x06, _SHA1_RSA) + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return Issued(x509.load_der_x509_certificate(der), issued.key)


def leaf(cn: str, issuer: Issued, now: datetime, *, eku: list[Any] | None = None, sans: list[str] | None = None,
         **kwargs: Any) -> Issued:
    return make_cert(name(cn, "Example Ltd"), now=now, issuer=issuer, eku=BOTH if eku is None else eku,
                     sans=[cn] if sans is None else sans, **kwargs)


@dataclass
class Estate:
    """Every certificate of the fixture estate, and the folder they were written to."""

    folder: Path
    public_root: Issued
    digicert_ca: Issued
    letsencrypt_ca: Issued
    private_root: Issued
    private_ca: Issued
    server_only_ca: Issued
    leaves: dict[str, Issued]

    def store_entry(self) -> tuple[str, list[x509.Certificate]]:
        """The extra public store that makes the fixture's public root count as public."""
        return ("test-public", [self.public_root.cert])


# file name -> (verdict, severity, rules of the warning and critical findings) with no --expressway-version
EXPECTED = {
    "public-combined-digicert.pem": ("renew-early", "warning", {"timeline.renew-early"}),
    "public-combined-letsencrypt.pem": ("clientauth-ends", "warning", {"timeline.clientauth-ends"}),
    "public-server-only.pem": ("server-only", "warning", {"eku.server-only"}),
    "private-combined.pem": ("ok", "info", set()),
    "private-server-only.pem": ("server-only", "warning", {"eku.server-only"}),
    "near-expiry.pem": ("expiring", "warning", {"validity.expiring"}),
    "wildcard.pem": ("unsupported", "warning", {"san.wildcard"}),
    "sha1.pem": ("broken", "critical", {"signature.sha1"}),
    "broken-chain.pem": ("broken", "critical", {"chain.signature"}),
    "restricted.pem": ("broken", "critical", {"chain.eku"}),
    "mismatch.pem": ("broken", "critical", {"key.mismatch"}),
    "matching.pem": ("ok", "info", set()),
    "expired.pem": ("expired", "critical", {"validity.expired"}),
    "ca/public-root.pem": ("ok", "info", set()),
    "ca/public-intermediates.pem#1": ("ok", "info", set()),
    "ca/public-intermediates.pem#2": ("ok", "info", set()),
    "ca/private-root.pem": ("ok", "info", set()),
    "ca/private-issuing.pem": ("ok", "info", set()),
    "ca/server-only-ca.pem": ("restricted", "warning", {"ca.eku"}),
    "ca/legacy-rsa-ca.pem": ("ok", "info", set()),
}


def build_estate(folder: Path, now: datetime) -> Estate:
    """Write the fixture estate under ``folder`` (certificates, two key files, a garbage file, a README)."""
    public_root = make_cert(name("Example Public Root R1", "Example Public Trust"), now=now, ca=True, days_left=4000,
                            days_old=2000)
    # Public intermediates carry serverAuth+clientAuth, as public TLS CAs did before the split.
    digicert_ca = make_cert(name("Example DigiCert-like TLS CA", "DigiCert Inc"), now=now, issuer=public_root,
                            ca=True, eku=BOTH, days_left=2000, days_old=1000)
    letsencrypt_ca = make_cert(name("Example R99", "Let's Encrypt"), now=now, issuer=public_root, ca=True, eku=BOTH,
                               days_left=1000, days_old=500)
    private_root = make_cert(name("Example UC Root CA", "Example Ltd"), now=now, ca=True, days_left=7000)
    private_ca = make_cert(name("Example UC Issuing CA", "Example Ltd"), now=now, issuer=private_root, ca=True,
                           days_left=3000)
    server_only_ca = make_cert(name("Example Server-only CA", "Example Ltd"), now=now, issuer=private_root, ca=True,
                               eku=[SERVER], days_left=3000)
    legacy_ca = make_cert(name("Example Legacy RSA CA", "Example Ltd"), now=now, issuer=private_root, ca=True,
                          key=rsa_key(), days_left=3000)
    impostor_key = ec_key()
    leaves = {
        "public-combined-digicert.pem": leaf("expe.example.com", digicert_ca, now, days_left=150),
        "public-combined-letsencrypt.pem": leaf("expe2.example.com", letsencrypt_ca, now, days_left=60),
        "public-server-only.pem": leaf("www.example.com", digicert_ca, now, eku=[SERVER], days_left=150),
        "private-combined.pem": leaf("expc1.example.com", private_ca, now,
                                     sans=["expc1.example.com", "expc.example.com"]),
        "private-server-only.pem": leaf("cms1.example.com", private_ca, now, eku=[SERVER]),
        "near-expiry.pem": leaf("cucm1.example.com", private_ca, now, days_left=10),
        "wildcard.pem": leaf("star.example.com", private_ca, now, sans=["star.example.com", "*.example.com"]),
        "sha1.pem": resign_sha1(leaf("old.example.com", legacy_ca, now), legacy_ca),
        "broken-chain.pem": leaf("forged.example.com", private_ca, now, signing_key=impostor_key,
                                 issuer_name=private_ca.cert.subject),
        "restricted.pem": leaf("cube1.example.com", server_only_ca, now),
        "mismatch.pem": leaf("unity1.example.com", private_ca, now),
        "matching.pem": leaf("imp1.example.com", private_ca, now),
        "expired.pem": leaf("gone.example.com", private_ca, now, days_left=-5, days_old=400),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca").mkdir(exist_ok=True)
    for file_name, issued in leaves.items():
        (folder / file_name).write_bytes(issued.pem())
    (folder / "ca" / "public-root.pem").write_bytes(public_root.pem())
    (folder / "ca" / "public-intermediates.pem").write_bytes(digicert_ca.pem() + letsencrypt_ca.pem())
    (folder / "ca" / "private-root.pem").write_bytes(private_root.pem())
    (folder / "ca" / "private-issuing.pem").write_bytes(private_ca.pem())
    (folder / "ca" / "server-only-ca.pem").write_bytes(server_only_ca.pem())
    (folder / "ca" / "legacy-rsa-ca.pem").write_bytes(legacy_ca.pem())
    (folder / "mismatch.key").write_bytes(Issued(leaves["mismatch.pem"].cert, ec_key()).key_pem())
    (folder / "matching.key").write_bytes(leaves["matching.pem"].key_pem())
    (folder / "garbage.pem").write_bytes(b"\x00\x01this is not a certificate\xff" * 20)
    (folder / "README.txt").write_text("Certificates exported from the UC estate.\n")
    return Estate(folder, public_root, digicert_ca, letsencrypt_ca, private_root, private_ca, server_only_ca, leaves)
