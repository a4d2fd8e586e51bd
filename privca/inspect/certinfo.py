"""One read-only summary of a certificate: the facts audit, check, list and show report, computed one way.

``describe(cert)`` never raises for a certificate that loaded: an extension that cannot be decoded is noted in
``problems`` and left out, so one odd certificate in an estate never stops an inventory.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID

from privca.common.serials import serial_text
from privca.common.names import SanEntry, printable, san_entries
from privca.issuance.profiles import EKU_NAMES_BY_OID, KEY_USAGES
from privca.rules.validity import days_left

ANY_EKU = "anyExtendedKeyUsage"
_EKU_NAMES = {**EKU_NAMES_BY_OID, "2.5.29.37.0": ANY_EKU}
# RFC 5280 names of the KeyUsage flags, in the order RFC 5280 4.2.1.3 lists them.
_KEY_USAGE_FLAGS = tuple((name, attribute) for name, attribute in KEY_USAGES.items())


@dataclass
class CertInfo:
    """What a certificate says about itself. ``eku`` and ``key_usage`` are None when the extension is absent."""

    cert: x509.Certificate
    der: bytes
    subject: str
    common_name: str | None
    sans: list[SanEntry]
    issuer: str
    serial: str
    eku: tuple[str, ...] | None
    key_usage: tuple[str, ...] | None
    key_type: str  # rsa, ec, ed25519, ...
    key_size: int
    key_param: str  # "2048" for RSA, the curve name for EC
    signature_hash: str | None  # sha256, sha1, ... None for Ed25519/Ed448
    not_before: datetime
    not_after: datetime
    sha256: str
    sha1: str
    is_ca: bool
    path_length: int | None
    self_issued: bool
    subject_key_id: str | None
    authority_key_id: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def position(self) -> str:
        """Where the certificate sits in a chain: ``root``, ``intermediate`` or ``leaf``."""
        if self.is_ca:
            return "root" if self.self_issued else "intermediate"
        return "leaf"

    @property
    def key_text(self) -> str:
        """``rsa:2048`` or ``ec:secp256r1``, as profiles write key types."""
        return f"{self.key_type}:{self.key_param}"

    @property
    def label(self) -> str:
        """A short human name: the CN, else the first SAN, else the subject."""
        if self.common_name:
            return self.common_name
        if self.sans:
            return self.sans[0].value
        return self.subject or f"serial {self.serial}"

    @cached_property
    def spki_sha256(self) -> str:
        """SHA-256 of the SubjectPublicKeyInfo: the same for a root and its cross-signed or re-issued copies."""
        spki = self.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()

    def has_eku(self, name: str) -> bool:
        """True when the certificate may be used for ``name``: listed, anyExtendedKeyUsage, or no EKU at all.

        RFC 5280 4.2.1.12: without the extension the key may be used for any purpose (OpenSSL agrees).
        """
        return self.eku is None or name in self.eku or ANY_EKU in self.eku

    def days_left(self, now: datetime) -> int:
        """Whole days until notAfter (negative once expired)."""
        return days_left(self.not_after, now)

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            # The names and formats of every privca --json (docs/json.md): typed SANs, the issuer's name as
            # issuer_subject (``issuer`` is a CA's ledger name elsewhere), key_type as profiles write it.
            "subject": self.subject,
            "sans": [{"type": entry.kind, "value": entry.value} for entry in self.sans],
            "issuer_subject": self.issuer,
            "serial": self.serial,
            "position": self.position,
            "eku": list(self.eku) if self.eku is not None else None,
            "key_usage": list(self.key_usage) if self.key_usage is not None else None,
            "key_type": self.key_text,
            "key_size": self.key_size,
            "signature_hash": self.signature_hash,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "fingerprint_sha256": self.sha256,
            "fingerprint_sha1": self.sha1,
            "is_ca": self.is_ca,
            "path_length": self.path_length,
        }
        if now is not None:
            data["days_left"] = self.days_left(now)
        if self.problems:
            data["problems"] = list(self.problems)
        return data


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(cert: x509.Certificate, der: bytes | None = None) -> CertInfo:
    """Summarise a parsed certificate. ``der`` saves re-encoding when the caller already has the bytes."""
    der = der if der is not None else cert.public_bytes(Encoding.DER)
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        serial_number = cert.serial_number
    if caught or serial_number <= 0:
        # cryptography warns (and will one day refuse) serials RFC 5280 4.1.2.2 forbids; the rest still stands
        problems.append("the serial number is not a positive integer (RFC 5280 4.1.2.2)")
    subject = _name_text(cert.subject, problems, "subject")
    issuer = _name_text(cert.issuer, problems, "issuer")
    common_name = _common_name(cert.subject)
    key_type, key_size, key_param = describe_key(cert, problems)
    signature_hash = _signature_hash(cert, problems)
    found = _extension_facts(cert, problems)
    return CertInfo(
        cert=cert,
        der=der,
        subject=subject,
        common_name=common_name,
        sans=found.sans,
        issuer=issuer,
        serial=serial_text(serial_number) if serial_number >= 0 else "-" + serial_text(-serial_number),
        eku=found.eku,
        key_usage=found.key_usage,
        key_type=key_type,
        key_size=key_size,
        key_param=key_param,
        signature_hash=signature_hash,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
        sha1=hashlib.sha1(der).hexdigest(),  # noqa: S324 - an identifier Cisco GUIs show, not a security use
        is_ca=found.is_ca,
        path_length=found.path_length,
        self_issued=cert.subject == cert.issuer,
        subject_key_id=found.ski,
        authority_key_id=found.aki,
        problems=problems,
    )


def _signature_hash(cert: x509.Certificate, problems: list[str]) -> str | None:
    """The name of the hash the issuer signed with (``sha256``), None for algorithms without one (Ed25519)."""
    try:
        hash_algorithm = cert.signature_hash_algorithm
        return hash_algorithm.name if hash_algorithm is not None else None
    except Exception:  # an algorithm cryptography does not know (e.g. RSASSA-PSS with odd parameters)
        problems.append(f"signature algorithm {cert.signature_algorithm_oid.dotted_string} is not understood")
        return "unknown"


class _ExtensionFacts(NamedTuple):
    sans: list[SanEntry]
    eku: tuple[str, ...] | None
    key_usage: tuple[str, ...] | None
    is_ca: bool
    path_length: int | None
    ski: str | None
    aki: str | None


def _extension_facts(cert: x509.Certificate, problems: list[str]) -> _ExtensionFacts:
    """What the certificate's extensions say; malformed extensions become a problem and say nothing."""
    sans: list[SanEntry] = []
    eku: tuple[str, ...] | None = None
    key_usage: tuple[str, ...] | None = None
    is_ca, path_length = False, None
    ski = aki = None
    try:
        extensions = list(cert.extensions)
    except Exception as exc:  # duplicate or malformed extensions: the rest of the summary still stands
        extensions = []
        problems.append(f"extensions cannot be decoded ({printable(str(exc))})")
    for ext in extensions:
        value = ext.value
        oid = ext.oid
        if oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            sans = san_entries(value)
        elif oid == ExtensionOID.EXTENDED_KEY_USAGE:
            eku = tuple(_EKU_NAMES.get(item.dotted_string, item.dotted_string) for item in value)
        elif oid == ExtensionOID.KEY_USAGE:
            key_usage = _key_usage_names(value)
        elif oid == ExtensionOID.BASIC_CONSTRAINTS:
            is_ca, path_length = value.ca, value.path_length
        elif oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER:
            ski = value.digest.hex()
        elif oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER and value.key_identifier is not None:
            aki = value.key_identifier.hex()
    return _ExtensionFacts(sans, eku, key_usage, is_ca, path_length, ski, aki)


def describe_key(cert: x509.Certificate, problems: list[str] | None = None) -> tuple[str, int, str]:
    """(type, bits, parameter) of the certificate's public key, e.g. ("rsa", 2048, "2048")."""
    try:
        key = cert.public_key()
    except Exception:
        if problems is not None:
            problems.append(f"public key algorithm {cert.public_key_algorithm_oid.dotted_string} is not understood")
        return "unknown", 0, "?"
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, str(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456, "ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, str(key.key_size)
    return type(key).__name__.lower(), 0, "?"


def _safe(text: str, limit: int) -> str:
    """``printable`` with a fast path: almost every name is already printable and short."""
    return text if len(text) <= limit and text.isprintable() else printable(text, limit=limit)


def _name_text(name: x509.Name, problems: list[str], what: str) -> str:
    try:
        return _safe(name.rfc4514_string(), 400)
    except Exception:
        problems.append(f"{what} name cannot be decoded")
        return "?"


def _common_name(name: x509.Name) -> str | None:
    try:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return None
    return _safe(str(values[0].value), 200) if values else None


def _key_usage_names(value: x509.KeyUsage) -> tuple[str, ...]:
    names = []
    for name, attribute in _KEY_USAGE_FLAGS:
        try:
            if getattr(value, attribute):
                names.append(name)
        except ValueError:  # encipher_only/decipher_only are undefined unless keyAgreement is set
            continue
    return tuple(names)


__all__ = ["ANY_EKU", "CertInfo", "describe", "describe_key"]
