#!/usr/bin/env python3
"""Re-create the hostile input corpus in this folder: python tests/corpus/make_corpus.py

The files are committed; this script documents how each was made (keys are random, so the bytes differ on every
run, never what makes the file hostile). Malformed structures that cryptography's builders refuse to produce
(duplicate extensions, e=1 keys, negative serials, invalid strings) are assembled here as raw DER and signed.
What each file is fed to, and the error expected, is in cases.toml.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent

# --- a little DER ---------------------------------------------------------------------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_of(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(items))


def integer(value: int) -> bytes:
    length = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(0x02, value.to_bytes(length, "big", signed=True))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def bits(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)


def utf8(text: str | bytes) -> bytes:
    return tlv(0x0C, text.encode() if isinstance(text, str) else text)


def printable(text: str) -> bytes:
    return tlv(0x13, text.encode())


def ia5(text: str | bytes) -> bytes:
    return tlv(0x16, text.encode() if isinstance(text, str) else text)


CN, O, OU, C = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6"
SAN, EKU, BC = "2.5.29.17", "2.5.29.37", "2.5.29.19"
SERVER_AUTH, CLIENT_AUTH = "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"


def name(*attributes: tuple[str, bytes]) -> bytes:
    return seq(*(set_of(seq(oid(o), value)) for o, value in attributes))


def dns_san(*names: str | bytes) -> bytes:
    return seq(*(tlv(0x82, n.encode() if isinstance(n, str) else n) for n in names))


def extension(o: str, value: bytes, critical: bool = False) -> bytes:
    return seq(oid(o), *( [tlv(0x01, b"\xff")] if critical else []), octets(value))


EKU_BOTH = seq(oid(SERVER_AUTH), oid(CLIENT_AUTH))

# --- CSRs -----------------------------------------------------------------------------------------------------

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(65537, 2048)


def spki(key: object) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_info(info: bytes, key: object) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return seq(info, seq(oid("1.2.840.10045.4.3.2")), bits(key.sign(info, ec.ECDSA(hashes.SHA256()))))
    if isinstance(key, rsa.RSAPrivateKey):
        return seq(info, seq(oid("1.2.840.113549.1.1.11"), tlv(0x05, b"")),
                   bits(key.sign(info, padding.PKCS1v15(), hashes.SHA256())))
    if isinstance(key, dsa.DSAPrivateKey):
        return seq(info, seq(oid("2.16.840.1.101.3.4.3.2")), bits(key.sign(info, hashes.SHA256())))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return seq(info, seq(oid("1.3.101.112")), bits(key.sign(info)))
    raise TypeError(key)


def csr(subject: bytes | None = None, extensions: list[bytes] | None = None, *, key: object = EC_KEY,
        public_key_info: bytes | None = None, version: int = 0) -> bytes:
    """A DER CSR. Defaults: CN and SAN expc1.example.com, EKU serverAuth+clientAuth, signed by an EC key."""
    subject = subject if subject is not None else name((O, utf8("Example Ltd")), (CN, utf8("expc1.example.com")))
    if extensions is None:
        extensions = [extension(SAN, dns_san("expc1.example.com")), extension(EKU, EKU_BOTH)]
    attributes = tlv(0xA0, seq(oid("1.2.840.113549.1.9.14"), set_of(seq(*extensions)))) if extensions else tlv(0xA0, b"")
    info = seq(integer(version), subject, public_key_info or spki(key), attributes)
    return sign_info(info, key)


def pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def subject_cn(value: bytes, *extra: tuple[str, bytes]) -> bytes:
    return name((O, utf8("Example Ltd")), *extra, (CN, value))


def rsa_spki(n: int, e: int) -> bytes:
    return seq(seq(oid("1.2.840.113549.1.1.1"), tlv(0x05, b"")), bits(seq(integer(n), integer(e))))


def e1_csr() -> bytes:
    """e=1: "signing" is the identity, so the CSR's self-signature is just the padded digest and verifies."""
    n = RSA_KEY.public_key().public_numbers().n
    info = seq(integer(0), subject_cn(utf8("expc1.example.com")), rsa_spki(n, 1),
               tlv(0xA0, seq(oid("1.2.840.113549.1.9.14"), set_of(seq(extension(SAN, dns_san("expc1.example.com")))))))
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(info).digest()
    k = (n.bit_length() + 7) // 8
    block = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return seq(info, seq(oid("1.2.840.113549.1.1.11"), tlv(0x05, b"")), bits(block))


def nested(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = seq(inner) if len(inner) < 0x7F else tlv(0x30, inner)
    return inner


def build_csrs() -> dict[str, bytes]:
    good = csr()
    files: dict[str, bytes] = {
        "nul-in-cn.csr": pem(csr(subject_cn(utf8("expc1.example.com\x00.evil.example")))),
        "ansi-escape-in-cn.csr": pem(csr(subject_cn(utf8("\x1b[2J\x1b[31mexpc1.example.com")))),
        "newline-in-o.csr": pem(csr(name((O, utf8("Example\nInjected: yes")), (CN, utf8("expc1.example.com"))))),
        "nul-in-san.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "expc1.example.com\x00.evil.example"))])),
        "space-in-san.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "expc1 .example.com"))])),
        "utf8-bytes-in-san.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "еxample.com".encode()))])),
        "idna-invalid-punycode.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "xn--99999999999.example.com"))])),
        "idna-ascii-a-label.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "xn--example-.example.com"))])),
        "idna-dot-lookalike.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "xn--a-ecp.example.com"))])),
        "idna-ideographic-stop.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "xn--aevil-7t3d.example.com"))])),
        "idna-mixed-script-homograph.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "xn--pple-43d.example.com"))])),
        "wildcard-san.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "*.example.com"))])),
        "wildcard-inner-label.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "a.*.example.com"))])),
        "trailing-dot-san.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "expc2.example.com."))])),
        "label-too-long.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", "a" * 64 + ".example.com"))])),
        "san-over-999-characters.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com", *[f"node{i:03d}.collab.example.com" for i in range(40)]))])),
        "san-uri-and-email.csr": pem(csr(extensions=[extension(SAN, seq(tlv(0x82, b"expc1.example.com"), tlv(0x86, b"https://evil.example/"), tlv(0x81, b"a@example.com")))])),
        "ip-san-five-bytes.csr": pem(csr(extensions=[extension(SAN, seq(tlv(0x82, b"expc1.example.com"), tlv(0x87, b"\x0a\x00\x00\x01\x05")))])),
        "duplicate-san-extension.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com")), extension(SAN, dns_san("evil.example.com"))])),
        "duplicate-eku-extension.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com")), extension(EKU, EKU_BOTH), extension(EKU, seq(oid("1.3.6.1.5.5.7.3.3")))])),
        "deep-nesting-in-san.csr": pem(csr(extensions=[extension(SAN, nested(3000))])),
        "deep-nesting.der": nested(15_000),  # just under the 64 KiB CSR limit
        "rsa-e1.csr": pem(e1_csr()),
        "rsa-e3.csr": pem(csr(key=rsa.generate_private_key(3, 2048))),
        "rsa-even-exponent.csr": pem(csr(public_key_info=rsa_spki(RSA_KEY.public_key().public_numbers().n, 65536), key=RSA_KEY)),
        "rsa-1024.csr": pem(csr(key=rsa.generate_private_key(65537, 1024))),
        "rsa-8192-bogus.csr": pem(csr(public_key_info=rsa_spki((1 << 8191) | int.from_bytes(os.urandom(1023), "big") | 1, 65537), key=RSA_KEY)),
        "dsa-key.csr": pem(csr(key=dsa.generate_private_key(2048))),
        "ed25519-key.csr": pem(csr(key=ed25519.Ed25519PrivateKey.generate())),
        "ec-p521-key.csr": pem(csr(key=ec.generate_private_key(ec.SECP521R1()))),
        "ec-secp256k1-key.csr": pem(csr(key=ec.generate_private_key(ec.SECP256K1()))),
        "bad-signature.csr": pem(good[:40] + bytes([good[40] ^ 0x01]) + good[41:]),
        "asks-to-be-a-ca.csr": pem(csr(extensions=[extension(SAN, dns_san("expc1.example.com")), extension(BC, seq(tlv(0x01, b"\xff")), critical=True)])),
        "no-san.csr": pem(csr(extensions=[extension(EKU, EKU_BOTH)])),
        "no-cn.csr": pem(csr(name((O, utf8("Example Ltd"))))),
        "two-cns.csr": pem(csr(name((CN, utf8("expc1.example.com")), (CN, utf8("evil.example.com"))))),
        "cn-not-in-san.csr": pem(csr(subject_cn(utf8("evil.example.com")))),
        "country-three-letters.csr": pem(csr(subject_cn(utf8("expc1.example.com"), (C, printable("USA"))))),
        "invalid-utf8-in-cn.csr": pem(csr(subject_cn(utf8(b"expc1\xff\xfe.example.com")))),
        "negative-version.csr": pem(csr(version=-1)),
        "garbage.der": os.urandom(1500),
        "empty.csr": b"",
        "whitespace-only.csr": b" \n\t\r\n",
        "truncated.csr": pem(good)[:300],
        "truncated.der": good[: len(good) // 2],
        "trailing-garbage.der": good + os.urandom(64),
        "bad-base64.csr": b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!not base64 at all~~~~\n-----END CERTIFICATE REQUEST-----\n",
        "private-key-instead.pem": EC_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()),
        "utf16-with-bom.csr": b"\xff\xfe" + pem(good).decode().encode("utf-16-le"),
        "huge.csr": pem(good) + b"#" * (70 * 1024),
        "ou-30000-characters.csr": pem(csr(subject_cn(utf8("expc1.example.com"), (OU, utf8("x" * 30_000))))),
        "forty-attributes.csr": pem(csr(subject_cn(utf8("expc1.example.com"), *[(OU, utf8(f"unit {i}")) for i in range(40)]))),
        "ip-san-unspecified.csr": pem(csr(extensions=[extension(SAN, seq(tlv(0x82, b"expc1.example.com"), tlv(0x87, bytes(4))))])),
        "ip-san-broadcast.csr": pem(csr(extensions=[extension(SAN, seq(tlv(0x82, b"expc1.example.com"), tlv(0x87, b"\xff" * 4)))])),
        "ip-san-loopback-v6.csr": pem(csr(extensions=[extension(SAN, seq(tlv(0x82, b"expc1.example.com"), tlv(0x87, bytes(15) + b"\x01")))])),
        "rsa-exponent-65-bits.csr": pem(csr(public_key_info=rsa_spki(RSA_KEY.public_key().public_numbers().n, 2**64 + 1), key=RSA_KEY)),
        "two-csrs.csr": pem(good) + pem(csr(subject_cn(utf8("expc2.example.com")),
                                            [extension(SAN, dns_san("expc2.example.com"))])),
    }
    return files


# --- certificates ---------------------------------------------------------------------------------------------

CA_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(serial: int, cn: bytes = utf8("expc1.example.com")) -> bytes:
    """A DER certificate with any serial (cryptography's builder refuses zero and negative ones)."""
    issuer = name((CN, utf8("Corpus Test CA")))
    validity = seq(tlv(0x17, b"260101000000Z"), tlv(0x17, b"270101000000Z"))
    tbs = seq(tlv(0xA0, integer(2)), integer(serial), seq(oid("1.2.840.10045.4.3.2")), issuer, validity,
              subject_cn(cn), spki(EC_KEY))
    return seq(tbs, seq(oid("1.2.840.10045.4.3.2")), bits(CA_KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))))


def build_certs() -> dict[str, bytes]:
    return {
        "negative-serial.pem": pem(certificate(-0x1234), "CERTIFICATE"),
        "zero-serial.pem": pem(certificate(0), "CERTIFICATE"),
        "oversized-serial.pem": pem(certificate(1 << 200), "CERTIFICATE"),
        "nul-in-cn.pem": pem(certificate(7, utf8("expc1.example.com\x00.evil.example")), "CERTIFICATE"),
        "garbage-in-certificate-label.pem": pem(os.urandom(700), "CERTIFICATE"),
    }


# --- PKCS#12 --------------------------------------------------------------------------------------------------

def build_p12() -> dict[str, bytes]:
    cert = x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p12.example.com")]))
    import datetime

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (cert.issuer_name(cert._subject_name).public_key(EC_KEY.public_key()).serial_number(5)  # type: ignore[attr-defined]
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30)).sign(EC_KEY, hashes.SHA256()))
    good = pkcs12.serialize_key_and_certificates(b"p12", EC_KEY, cert, None,
                                                 serialization.BestAvailableEncryption(b"corpus-password"))
    # PFX = SEQUENCE { version, authSafe, macData SEQUENCE { mac, salt, iterations } }. 2**31-1 MAC rounds is a
    # denial of service for anything that tries the password before it looks at the count.
    tree = parse_der(good)
    mac_data = tree[0][1][2][1]  # type: ignore[index]
    mac_data[2] = (0x02, (2**31 - 1).to_bytes(4, "big"))
    huge = encode_der(tree)
    return {
        "password-protected.p12": good,
        "truncated.p12": good[: len(good) // 3],
        "garbage.p12": os.urandom(2048),
        "huge-iteration-count.p12": huge,
    }


def parse_der(data: bytes) -> list[tuple[int, object]]:
    """DER as nested (tag, bytes-or-children) lists, enough to edit one value and re-encode."""
    items, at = [], 0
    while at < len(data):
        tag, first = data[at], data[at + 1]
        n = 0 if first < 0x80 else first & 0x7F
        size = first if first < 0x80 else int.from_bytes(data[at + 2: at + 2 + n], "big")
        body = data[at + 2 + n: at + 2 + n + size]
        items.append((tag, parse_der(body) if tag & 0x20 else body))
        at += 2 + n + size
    return items


def encode_der(items: list[tuple[int, object]]) -> bytes:
    return b"".join(tlv(tag, encode_der(value) if isinstance(value, list) else value)  # type: ignore[arg-type]
                    for tag, value in items)


# --- profiles -------------------------------------------------------------------------------------------------

BASE_PROFILE = """schema = 1
description = "corpus"
kind = "leaf"
validity_days = 397

[key]
allowed = ["rsa:2048", "ec:secp256r1"]

[key_usage]
values = ["digitalSignature"]

[extended_key_usage]
values = ["serverAuth", "clientAuth"]
"""


def build_profiles() -> dict[str, bytes]:
    return {
        "unknown-key.toml": (BASE_PROFILE + "\n[san]\nallow_wildcard = true\n").encode(),
        "wrong-type.toml": BASE_PROFILE.replace("validity_days = 397", 'validity_days = "397"').encode(),
        "bool-as-number.toml": BASE_PROFILE.replace("validity_days = 397", "validity_days = true").encode(),
        "negative-validity.toml": BASE_PROFILE.replace("validity_days = 397", "validity_days = -5").encode(),
        "absurd-max-validity.toml": BASE_PROFILE.replace("validity_days = 397", "validity_days = 397\nmax_validity_days = 100000000000000000000").encode(),
        "leaf-key-cert-sign.toml": BASE_PROFILE.replace('values = ["digitalSignature"]', 'values = ["digitalSignature", "keyCertSign"]').encode(),
        "unknown-eku.toml": BASE_PROFILE.replace('"serverAuth", "clientAuth"', '"serverAuth", "anyExtendedKeyUsage"').encode(),
        "cycle-a.toml": b'extends = "cycle-b"\n' + BASE_PROFILE.encode(),
        "cycle-b.toml": b'extends = "cycle-a"\n' + BASE_PROFILE.encode(),
        "self-extends.toml": b'extends = "self-extends"\n' + BASE_PROFILE.encode(),
        "extends-unknown.toml": b'extends = "no-such-profile"\n' + BASE_PROFILE.encode(),
        "not-toml.toml": b"schema = 1\n[key\nallowed = \n",
        "invalid-utf8.toml": BASE_PROFILE.encode().replace(b"corpus", b"corp\xff\xfeus"),
        "nul-byte.toml": BASE_PROFILE.encode().replace(b"corpus", b"corp\x00us"),
        "deeply-nested.toml": b"description = " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
        "huge.toml": BASE_PROFILE.encode() + b"# padding\n" * 30_000,
        "leaf-ocsp-signing.toml": BASE_PROFILE.replace('"serverAuth", "clientAuth"', '"serverAuth", "OCSPSigning"').encode(),
        "leaf-code-signing.toml": BASE_PROFILE.replace('"serverAuth", "clientAuth"', '"codeSigning"').encode(),
        "leaf-time-stamping.toml": BASE_PROFILE.replace('"serverAuth", "clientAuth"', '"serverAuth", "timeStamping"').encode(),
        "rsa-key-agreement.toml": BASE_PROFILE.replace('values = ["digitalSignature"]', 'values = ["digitalSignature", "keyAgreement", "encipherOnly"]').encode(),
        "ec-data-encipherment.toml": BASE_PROFILE.replace('values = ["digitalSignature"]', 'values = ["digitalSignature"]\nec_add = ["dataEncipherment"]').encode(),
        "names-nothing.toml": (BASE_PROFILE + "\n[subject]\nrequire_cn = false\n\n[san]\nrequired = false\n").encode(),
        "replaces-nothing.toml": BASE_PROFILE.replace("validity_days = 397", "validity_days = 397\nreplaces_shipped = true").encode(),
        "shadow/expressway-c.toml": BASE_PROFILE.encode(),
    }


def build_backups() -> dict[str, bytes]:
    return {
        "random-bytes.pcabk": os.urandom(4096),
        "header-only.pcabk": b"PRIVCABK\x01\x0f\x08\x01" + os.urandom(28),
        "absurd-scrypt-cost.pcabk": b"PRIVCABK\x01\x3f\x08\x01" + os.urandom(28 + 200),
        "scrypt-2gib.pcabk": b"PRIVCABK\x01\x14\x10\x01" + os.urandom(28 + 200),  # 2 GiB and 16 s to derive
        "scrypt-parallel-2.pcabk": b"PRIVCABK\x01\x0f\x08\x02" + os.urandom(28 + 200),
        "future-format.pcabk": b"PRIVCABK\x07\x0f\x08\x01" + os.urandom(28 + 200),
    }


# --- OCSP requests --------------------------------------------------------------------------------------------
# Sent to the responder privca serve runs. The issuer hashes name no CA on purpose: a request must be refused
# for what it is before privca looks for the issuer, and a well-formed one for an unknown issuer gets
# "unauthorized" (RFC 6960 2.3), never a signature.

SHA1_ALG, SHA256_ALG, MD5_ALG = "1.3.14.3.2.26", "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.5"
NONCE_OID = "1.3.6.1.5.5.7.48.1.2"


def cert_id(algorithm: str = SHA256_ALG, size: int = 32, serial: int = 0x1234567890ABCDEF) -> bytes:
    return seq(seq(oid(algorithm), tlv(0x05, b"")), octets(b"\x11" * size), octets(b"\x22" * size), integer(serial))


def ocsp_request(*requests: bytes, extensions: list[bytes] | None = None, version: bytes = b"") -> bytes:
    tbs = [version, seq(*(seq(r) for r in requests))]
    if extensions is not None:
        tbs.append(tlv(0xA2, seq(*extensions)))
    return seq(seq(*tbs))


def build_ocsp() -> dict[str, bytes]:
    good = ocsp_request(cert_id())
    return {
        "empty.der": b"",
        "garbage.der": os.urandom(300),
        "truncated.der": good[:-7],
        "trailing-garbage.der": good + b"\x00\x01garbage",
        "no-certid.der": ocsp_request(),
        "two-certids.der": ocsp_request(cert_id(), cert_id(serial=2)),
        "md5-certid.der": ocsp_request(cert_id(MD5_ALG, 16)),
        "unknown-hash-oid.der": ocsp_request(cert_id("1.3.6.1.4.1.55555.9", 32)),
        "negative-serial.der": ocsp_request(cert_id(serial=-5)),
        "unknown-critical-extension.der": ocsp_request(cert_id(), extensions=[
            extension("1.3.6.1.4.1.55555.1.1", tlv(0x05, b""), critical=True)]),
        "nonce-8000-bytes.der": ocsp_request(cert_id(), extensions=[extension(NONCE_OID, octets(b"\x01" * 8000))]),
        "nonce-empty.der": ocsp_request(cert_id(), extensions=[extension(NONCE_OID, octets(b""))]),
        "nonce-twice.der": ocsp_request(cert_id(), extensions=[extension(NONCE_OID, octets(b"\x01" * 16)),
                                                               extension(NONCE_OID, octets(b"\x02" * 16))]),
        "version-99.der": ocsp_request(cert_id(), version=tlv(0xA0, integer(99))),
        "indefinite-length.der": b"\x30\x80" + good[2:] + b"\x00\x00",
        "length-4gib.der": b"\x30\x84\xff\xff\xff\xff" + good[2:],
        "deep-nesting.der": nested(5000),
        "unknown-issuer.der": good,
    }


def main() -> None:
    import sys

    builders = {"csr": build_csrs, "cert": build_certs, "p12": build_p12, "profile": build_profiles,
                "backup": build_backups, "ocsp": build_ocsp}
    wanted = sys.argv[1:] or list(builders)  # e.g. "make_corpus.py ocsp" re-creates that folder only
    groups = {folder: builders[folder]() for folder in wanted}
    for folder, files in groups.items():
        target = HERE / folder
        target.mkdir(exist_ok=True)
        for filename, data in files.items():
            (target / filename).parent.mkdir(exist_ok=True)
            (target / filename).write_bytes(data)
    print(f"wrote {sum(len(f) for f in groups.values())} corpus files under {HERE}")


if __name__ == "__main__":
    main()
