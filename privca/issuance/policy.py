"""Does this CSR fit this profile? Small checks, one rule each; all problems are collected, none is fatal alone.

A CSR is a request: the extensions it asks for (EKU, key usage, basic constraints) are reported, never copied.
Only the subject attributes the profile keeps and the SANs that pass the profile's rules reach the certificate.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from privca.common.fsutil import read_regular_file
from privca.errors import CSRError
from privca.keys.material import describe_public_key
from privca.common import pem
from privca.common.names import SanEntry, printable, san_entries
from privca.issuance.profiles import EKU_NAMES_BY_OID, Profile
from privca.rules import keys as key_rules
from privca.rules import names as name_rules
from privca.rules.catalogue import Breach, refusal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

MAX_CSR_BYTES = 64 * 1024  # an Expressway CSR is ~1.5 KiB; anything this large is not a CSR
# RFC 5280 appendix A upper bounds (ub-common-name and friends), in characters (C, two letters, is checked by
# cryptography when the attribute is rebuilt).
ATTRIBUTE_UPPER_BOUNDS = {"CN": 64, "O": 64, "OU": 64, "L": 128, "ST": 128, "serialNumber": 64,
                          "emailAddress": 255}
# A Cisco CSR holds five or six attributes; a subject with dozens is built to bloat or confuse.
MAX_SUBJECT_ATTRIBUTES = 16

_ATTRIBUTE_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COUNTRY_NAME: "C",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "emailAddress",
}


@dataclass
class IssuanceRequest:
    """What the operator and profile decided (subject, SANs, profile) next to what the CSR asked for."""

    source: str
    csr_sha256: str | None  # None for a renewal from the certificate's own public key
    profile: Profile
    subject: x509.Name
    sans: list[SanEntry]
    general_names: list[x509.GeneralName]
    public_key: "CertificatePublicKeyTypes"
    key_algorithm: str
    key_param: str
    requested_eku: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def key_type(self) -> str:
        return f"{self.key_algorithm}:{self.key_param}"


def load_csr(data: bytes, source: str) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR; CSRError naming ``source`` when it is not one."""
    if not data.strip():
        raise CSRError(f"{source}: the file is empty")
    if len(data) > MAX_CSR_BYTES:
        raise CSRError(f"{source}: larger than {MAX_CSR_BYTES // 1024} KiB; this is not a CSR")
    try:
        if pem.has_markers(data):
            return x509.load_der_x509_csr(_single_csr_block(data, source))
        return x509.load_der_x509_csr(data)
    except CSRError:
        raise
    except Exception:  # cryptography raises ValueError and friends for every malformed encoding
        raise CSRError(f"{source}: not a valid PEM or DER certificate signing request") from None


_CSR_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")


def _single_csr_block(data: bytes, source: str) -> bytes:
    """The DER of the one CSR in a PEM file. A file with several is refused: reading only the first would issue
    one certificate and silently drop the others' requests."""
    import base64
    import binascii

    requests = [block for block in pem.scan(data).blocks if block.label in _CSR_LABELS]
    if not requests:
        if b"CERTIFICATE REQUEST-----" in data:
            raise ValueError("a CERTIFICATE REQUEST block without its END line")  # reported as not a valid CSR
        raise CSRError(f"{source}: PEM file holds no CERTIFICATE REQUEST block")
    if len(requests) > 1:
        raise CSRError(f"{source}: holds {len(requests)} certificate requests; privca reads one CSR per file, so "
                       "split them into one file each and name them all")
    try:
        return base64.b64decode(b"".join(requests[0].body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the CERTIFICATE REQUEST block is not base64") from None  # reported as not a valid CSR


# Signature algorithms whose hash is broken, by OID; the name is the one OpenSSL prints for them.
WEAK_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.4": "MD5 (md5WithRSAEncryption)",
    "1.2.840.113549.1.1.5": "SHA-1 (sha1WithRSAEncryption)",
    "1.2.840.10045.4.1": "SHA-1 (ecdsa-with-SHA1)",
    "1.2.840.10040.4.3": "SHA-1 (dsaWithSHA1)",
    "1.3.14.3.2.29": "SHA-1 (sha1WithRSA)",
}


def _weak_signature_hash(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        return WEAK_SIGNATURE_HASHES.get(csr.signature_algorithm_oid.dotted_string)
    except Exception:  # an unreadable algorithm is left to the signature check
        return None


def check(csr: x509.CertificateSigningRequest, der: bytes, source: str, profile: Profile, *,
          supplied_names: list[x509.GeneralName] | None = None,
          signature_checked: bool = False) -> tuple[IssuanceRequest | None, list[str]]:
    """Check one parsed CSR against ``profile``; return the request (if it passed) and the problems found.

    ``supplied_names`` are SANs an enrollment authority vouches for (a challenge password bound to names), used
    when the CSR carries none: some enrollment clients cannot put SANs in their CSRs. ``signature_checked`` says
    the caller verified the signature over the bytes as received (a CSR re-encoded to DER to be read at all).
    """
    problems: list[str] = []

    weak = None if signature_checked else _weak_signature_hash(csr)
    if weak is not None:
        # Said before the signature check: OpenSSL 3 may not verify SHA-1 or MD5 at all, and "tampered" would
        # send the administrator looking for the wrong problem.
        problems.append(f"the CSR is signed with {weak}, which is broken and not accepted; make a new CSR signed "
                        "with SHA-256 (Expressway's Generate CSR: Digest algorithm SHA-256, its default; "
                        "OpenSSL: openssl req -new -sha256 -key KEY.pem -out NEW.csr)")
    else:
        try:
            signature_ok = signature_checked or csr.is_signature_valid
        except Exception:
            signature_ok = False
        if not signature_ok:
            problems.append("the CSR signature does not verify (corrupted or tampered CSR)")

    try:
        public_key = csr.public_key()
    except Exception:
        return None, problems + ["the public key cannot be read"]
    algorithm, param = describe_public_key(public_key)
    problems += _key_problems(public_key, algorithm, param, profile)

    try:
        extensions = list(csr.extensions)
    except Exception as exc:  # duplicate or malformed requested extensions
        return None, problems + [f"the requested extensions cannot be read ({printable(str(exc))})"]

    subject, subject_notes, subject_problems = _subject(csr, profile)
    problems += subject_problems
    asked = _Requested(notes=list(subject_notes))
    for ext in extensions:
        asked.add(ext)
    if not asked.general_names and supplied_names:
        asked.general_names = list(supplied_names)
        asked.notes.append("SANs taken from the enrollment authorisation; the CSR had none")
    return _decide(problems + asked.problems, source=source, csr_sha256=hashlib.sha256(der).hexdigest(),
                   profile=profile, subject=subject, general_names=asked.general_names, public_key=public_key,
                   requested_eku=asked.eku, notes=asked.notes + _eku_notes(asked.eku, profile))


def _decide(
    problems: list[str], *, source: str, csr_sha256: str | None, profile: Profile, subject: x509.Name,
    general_names: list[x509.GeneralName], public_key: "CertificatePublicKeyTypes", requested_eku: list[str],
    notes: list[str],
) -> tuple[IssuanceRequest | None, list[str]]:
    """The SAN rules, then the request (a CSR's or a renewal's) when nothing is wrong, else every problem."""
    sans = san_entries(general_names)
    problems = problems + _san_problems(sans, subject, profile)
    if problems:
        return None, problems
    algorithm, param = describe_public_key(public_key)
    return IssuanceRequest(source=source, csr_sha256=csr_sha256, profile=profile, subject=subject, sans=sans,
                           general_names=general_names, public_key=public_key, key_algorithm=algorithm,
                           key_param=param, requested_eku=requested_eku, notes=notes), []


@dataclass
class _Requested:
    """What a CSR's extensions ask for: SANs are kept, the rest is reported (the profile decides)."""

    notes: list[str]
    problems: list[str] = field(default_factory=list)
    eku: list[str] = field(default_factory=list)
    sans: list[SanEntry] = field(default_factory=list)
    general_names: list[x509.GeneralName] = field(default_factory=list)

    def add(self, ext: x509.Extension[x509.ExtensionType]) -> None:
        value = ext.value
        if isinstance(value, x509.SubjectAlternativeName):
            self.general_names = list(value)
            self.sans = san_entries(value)
        elif isinstance(value, x509.BasicConstraints):
            if value.ca:
                self.problems.append("the CSR asks to be a CA (basicConstraints CA:TRUE); privca never issues CAs "
                                     "from a CSR")
        elif isinstance(value, x509.ExtendedKeyUsage):
            self.eku = [EKU_NAMES_BY_OID.get(oid.dotted_string, oid.dotted_string) for oid in value]
        elif isinstance(value, x509.KeyUsage):
            self.notes.append("requested key usage ignored; the profile decides")
        else:
            self.notes.append(f"requested extension {ext.oid.dotted_string} ignored")


def _eku_notes(requested: list[str], profile: Profile) -> list[str]:
    """How the EKUs granted (always the profile's) differ from those the CSR asked for."""
    if not requested:
        return []
    if [name for name in requested if name not in profile.eku]:
        return [f"asked for {', '.join(requested)}; profile {profile.name} grants {', '.join(profile.eku)}"]
    missing = [name for name in profile.eku if name not in requested]
    if missing:
        return [f"granted {', '.join(missing)} beyond what the CSR asked for, as profile {profile.name} says"]
    return []


def request_from_certificate(
    cert: x509.Certificate, public_key: "CertificatePublicKeyTypes", source: str, profile: Profile, *,
    csr_sha256: str | None = None, requested_eku: list[str] | None = None,
) -> tuple[IssuanceRequest | None, list[str]]:
    """A renewal request: the names of an issued certificate and ``public_key``, checked against ``profile``.

    The same rules as ``check`` apply to the key, the subject and the SANs, so a renewal never slips past a
    profile that has been tightened since the certificate was issued.
    """
    algorithm, param = describe_public_key(public_key)
    problems = _key_problems(public_key, algorithm, param, profile)
    subject, notes, subject_problems = _kept_subject(list(cert.subject), profile)
    problems += subject_problems
    try:
        general_names = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        general_names = []
    return _decide(problems, source=source, csr_sha256=csr_sha256, profile=profile, subject=subject,
                   general_names=general_names, public_key=public_key, requested_eku=list(requested_eku or []),
                   notes=notes)


def _key_problems(public_key: object, algorithm: str, param: str, profile: Profile) -> list[str]:
    exponent = public_key.public_numbers().e if isinstance(public_key, rsa.RSAPublicKey) else None
    bits = public_key.key_size if isinstance(public_key, rsa.RSAPublicKey) else 0
    breaches = key_rules.key_breaches(algorithm, bits, exponent=exponent)
    if not breaches and (found := key_rules.allowed_by_profile(f"{algorithm}:{param}", profile.key_allowed,
                                                               profile.name)):
        breaches.append(found)
    return _refused(breaches)


def _subject(csr: x509.CertificateSigningRequest, profile: Profile) -> tuple[x509.Name, list[str], list[str]]:
    try:
        with warnings.catch_warnings():
            # cryptography warns (on stderr) about a malformed attribute such as a three-letter country while
            # parsing; each attribute is rebuilt in _kept_subject, which raises for the same fault and reports it.
            warnings.simplefilter("ignore")
            attributes = list(csr.subject)
    except Exception:
        return x509.Name([]), [], ["the subject cannot be read"]
    return _kept_subject(attributes, profile)


def _kept_subject(attributes: list[x509.NameAttribute[Any]], profile: Profile) -> tuple[x509.Name, list[str], list[str]]:
    """The subject attributes ``profile`` keeps, with notes on those dropped and problems with those kept."""
    kept: list[x509.NameAttribute[Any]] = []
    notes: list[str] = []
    problems: list[str] = []
    common_names = []
    if len(attributes) > MAX_SUBJECT_ATTRIBUTES:
        return x509.Name([]), notes, [f"the subject has {len(attributes)} attributes; privca accepts up to "
                                      f"{MAX_SUBJECT_ATTRIBUTES}"]
    for attribute in attributes:
        short = _ATTRIBUTE_NAMES.get(attribute.oid, attribute.oid.dotted_string)
        value = attribute.value if isinstance(attribute.value, str) else ""
        if any(not ch.isprintable() for ch in value):
            problems.append(f"subject {short} contains control characters: {printable(value)}")
            continue
        bound = ATTRIBUTE_UPPER_BOUNDS.get(short)
        if bound is not None and len(value) > bound and short in profile.subject_keep:
            problems.append(f"subject {short} is {len(value)} characters long; RFC 5280 allows up to {bound}")
            continue
        if short not in profile.subject_keep:
            notes.append(f"subject {short}={printable(value)} dropped (not kept by profile {profile.name})")
            continue
        if short == "CN":
            common_names.append(value)
        try:
            kept.append(x509.NameAttribute(attribute.oid, value))
        except ValueError as exc:  # e.g. a country that is not two letters
            problems.append(f"subject {short}={printable(value)}: {printable(str(exc))}")
    if len(common_names) > 1:
        problems.append("the subject has more than one CN")
    if profile.require_cn and not common_names:
        problems.append("the subject has no CN; Cisco products expect the node or cluster FQDN there")
    return x509.Name(kept), notes, problems


def _san_problems(sans: list[SanEntry], subject: x509.Name, profile: Profile) -> list[str]:
    breaches: list[Breach | None] = []
    if profile.san_required and not sans:
        breaches.append(name_rules.missing_san("the CSR"))
    for entry in sans:
        if (wrong_type := name_rules.san_type(entry, profile.san_types, profile.name)) is not None:
            breaches.append(wrong_type)
        elif entry.kind == "dns":
            breaches += [name_rules.wildcard(entry.value, allow_leading=profile.allow_wildcards),
                         name_rules.dns_syntax(entry.value)]
        elif entry.kind == "ip":
            breaches.append(name_rules.ip_syntax(entry.value, special=profile.allow_special_ips))
    breaches += name_rules.duplicates(sans)
    breaches.append(name_rules.length(sans, profile.max_san_length))
    if profile.cn_must_be_in_san:
        common_names = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        breaches.append(name_rules.cn_in_san(str(common_names[0]) if common_names else None, sans))
    problems = _refused(breaches)
    if not sans and not list(subject):
        problems.append("the certificate would name nothing (an empty subject and no SAN); a CN or a SAN is needed")
    return problems


def _refused(breaches: Iterable[Breach | None]) -> list[str]:
    """Policy refuses every breach: each becomes one of the problems that keep a CSR from a certificate."""
    return [refusal(breach) for breach in breaches if breach is not None]


def read_csr_file(path: Path) -> bytes:
    """The bytes of a CSR file, with a clear error for missing, unreadable or non-regular files."""
    return read_regular_file(path, MAX_CSR_BYTES, CSRError)
