"""What the ledger holds, as typed values: the records that move between privca's modules.

A record is frozen and carries real types (aware UTC datetimes, ints, enums); the certificate it holds is parsed
on first use and kept. ``to_json()`` is the one JSON shape of each kind of record, the one every ``--json``
prints: serials in hex, SHA-256 fingerprints, RFC 4514 subjects, typed SANs, ISO 8601 UTC times (``...Z``),
absolute paths, and enum values (``revoked``, ``keyCompromise``), never phrases.

Only the ledger package makes records from SQLite rows (``from_row``); everything else receives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from privca.rules.validity import is_expired

from privca.common.serials import serial_text

if TYPE_CHECKING:
    import sqlite3

    from cryptography import x509

#: What ``to_json()`` returns: a JSON object of plain values (str, int, bool, None, lists and objects of them) that
#: the json module writes as they are. Values are typed loosely on purpose: this is the boundary where typed
#: records become text, and the printers that read it back index it freely.
Json = dict[str, Any]


class CARole(StrEnum):
    """The kind of a CA: a self-signed root, or an issuing CA (an intermediate that signs the leaves)."""

    ROOT = "root"
    ISSUING = "issuing"


class CAStatus(StrEnum):
    """``active`` issues (or, for a root, signs issuing CAs); ``retired`` was rotated out but is still trusted
    while what it signed is in service; ``revoked`` is on its parent's CRL."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class CertificateStatus(StrEnum):
    """The status recorded for an issued certificate; ``expired`` is not recorded but seen (``shown_status``)."""

    VALID = "valid"
    REVOKED = "revoked"
    HOLD = "hold"


class RevocationReason(StrEnum):
    """RFC 5280 section 5.3.1 CRLReason, named as the RFC writes them (and as ``--reason`` takes them).

    removeFromCRL is only for delta CRLs and aACompromise only for attribute certificates: privca uses neither.
    """

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "caCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"


EXPIRED = "expired"  # the status shown for a valid certificate past its notAfter


def iso(moment: datetime) -> str:
    """UTC timestamps as stored and shown: ISO 8601 with a Z, to the second, so text order is time order.

    isoformat() rather than strftime(): ``privca list`` formats tens of thousands of them, and strftime is ~5x
    slower."""
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="seconds")[:19] + "Z"


def parse_time(text: str) -> datetime:
    """A stored timestamp as an aware UTC datetime."""
    return datetime.fromisoformat(text)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _reason(text: str | None) -> RevocationReason | None:
    return None if text is None else RevocationReason(text)


def _shown_status(status: "CertificateStatus", not_after: datetime, now: datetime | None) -> str:
    """``expired`` (as the rules define it) for a valid certificate past its notAfter, else the recorded status."""
    if now is not None and status is CertificateStatus.VALID and is_expired(not_after, now):
        return EXPIRED
    return str(status)


def _load_certificate(pem: str) -> "x509.Certificate":
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode())


def san_json(value: str) -> Json:
    """A stored SAN value with its type (``dns``, ``ip``, ``email``, ``uri``), as ``--json`` shows it."""
    from privca.common.names import san_kind

    return {"type": san_kind(value), "value": value}


@dataclass(frozen=True)
class CA:
    """One CA generation: a root or an issuing CA, with its certificate and where its key is kept."""

    id: int
    name: str
    role: CARole
    generation: int
    parent_id: int | None
    subject: str
    serial: str
    key_type: str
    key_ref: str
    not_before: datetime
    not_after: datetime
    status: CAStatus
    fingerprint_sha256: str
    crl_url: str | None
    ocsp_url: str | None
    created_at: datetime
    pem: str
    crl_number: int = 0
    crl_changes: int = 0
    replaced_by: int | None = None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None

    @classmethod
    def from_row(cls, row: "sqlite3.Row") -> "CA":
        return cls(
            id=int(row["id"]), name=row["name"], role=CARole(row["role"]), generation=int(row["generation"]),
            parent_id=row["parent_id"], subject=row["subject"], serial=row["serial"], key_type=row["key_type"],
            key_ref=row["key_ref"], not_before=parse_time(row["not_before"]), not_after=parse_time(row["not_after"]),
            status=CAStatus(row["status"]), fingerprint_sha256=row["fingerprint_sha256"], crl_url=row["crl_url"],
            ocsp_url=row["ocsp_url"], created_at=parse_time(row["created_at"]), pem=row["pem"],
            crl_number=int(row["crl_number"]), crl_changes=int(row["crl_changes"]), replaced_by=row["replaced_by"],
            retired_at=_time(row["retired_at"]), revoked_at=_time(row["revoked_at"]),
            revocation_reason=_reason(row["revocation_reason"]),
        )

    @cached_property
    def certificate(self) -> "x509.Certificate":
        """The CA's certificate, parsed once."""
        return _load_certificate(self.pem)

    @property
    def algorithm(self) -> str:
        """``rsa`` or ``ec``: the family of the CA's key."""
        return self.key_type.split(":")[0]

    @property
    def is_root(self) -> bool:
        return self.role is CARole.ROOT

    def to_json(self, names: Mapping[int, str] | None = None) -> Json:
        """The CA as ``--json`` shows it; ``names`` (CA id -> name) names its parent and successor."""
        def name_of(ca_id: int | None) -> str | int | None:
            return None if ca_id is None else (names or {}).get(ca_id, ca_id)

        return {
            "name": self.name, "role": self.role.value, "generation": self.generation, "status": self.status.value,
            "subject": self.subject, "serial": serial_text(self.serial), "fingerprint_sha256": self.fingerprint_sha256,
            "key_type": self.key_type, "key_ref": self.key_ref, "not_before": iso(self.not_before),
            "not_after": iso(self.not_after), "parent": name_of(self.parent_id), "crl_url": self.crl_url,
            "ocsp_url": self.ocsp_url, "created_at": iso(self.created_at), "replaced_by": name_of(self.replaced_by),
            "retired_at": _iso(self.retired_at), "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason.value if self.revocation_reason else None,
        }


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate privca issued, as the ledger holds it."""

    id: int
    serial: str
    issuer_id: int
    profile: str
    subject: str
    sans: tuple[str, ...]
    eku: tuple[str, ...]
    key_type: str
    key_size: str
    not_before: datetime
    not_after: datetime
    status: CertificateStatus
    fingerprint_sha256: str
    issued_by: str
    issued_at: datetime
    pem: str
    cert_path: str | None = None
    chain_path: str | None = None
    fullchain_path: str | None = None
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    csr_sha256: str | None = None
    csr_der: bytes | None = field(default=None, repr=False)
    requested_eku: tuple[str, ...] = ()
    replaces: str | None = None
    channel: str = "cli"  # how it was requested: cli, scep or est

    @classmethod
    def from_row(cls, row: "sqlite3.Row") -> "IssuedCertificate":
        return cls(
            id=int(row["id"]), serial=row["serial"], issuer_id=int(row["issuer_id"]), profile=row["profile"],
            subject=row["subject"], sans=_names(row["sans"]), eku=_names(row["eku"]), key_type=row["key_type"],
            key_size=str(row["key_size"]), not_before=parse_time(row["not_before"]),
            not_after=parse_time(row["not_after"]), status=CertificateStatus(row["status"]),
            fingerprint_sha256=row["fingerprint_sha256"], issued_by=row["issued_by"],
            issued_at=parse_time(row["issued_at"]), pem=row["pem"], cert_path=row["cert_path"],
            chain_path=row["chain_path"], fullchain_path=row["fullchain_path"], revoked_at=_time(row["revoked_at"]),
            revocation_reason=_reason(row["revocation_reason"]), csr_sha256=row["csr_sha256"],
            csr_der=row["csr_der"], requested_eku=_names(row["requested_eku"]), replaces=row["replaces"],
            channel=row["channel"] if "channel" in row.keys() else "cli",
        )

    @cached_property
    def certificate(self) -> "x509.Certificate":
        """The certificate, parsed once."""
        return _load_certificate(self.pem)

    def shown_status(self, now: datetime | None) -> str:
        """The status people see: ``expired`` for a valid certificate past its notAfter, else the recorded one."""
        return _shown_status(self.status, self.not_after, now)

    def to_json(self, *, now: datetime | None = None, names: Mapping[int, str] | None = None,
                replaced_by: str | None = None) -> Json:
        """The certificate as ``issue``, ``list`` and ``show --json`` print it.

        ``status`` is ``expired`` for a valid certificate past its notAfter at ``now``; ``issuer`` is the CA's name
        when ``names`` (CA id -> name) is given; ``replaced_by`` is the serial of its renewal, when known.
        """
        data: Json = {
            "serial": serial_text(self.serial), "status": self.shown_status(now), "profile": self.profile,
            "subject": self.subject,
            "sans": [san_json(value) for value in self.sans], "eku": list(self.eku),
            "not_before": iso(self.not_before), "not_after": iso(self.not_after),
            "issuer": (names or {}).get(self.issuer_id, self.issuer_id),
            "key_type": f"{self.key_type}:{self.key_size}", "fingerprint_sha256": self.fingerprint_sha256,
            "cert_path": self.cert_path, "chain_path": self.chain_path, "fullchain_path": self.fullchain_path,
            "issued_at": iso(self.issued_at), "replaces": serial_text(self.replaces) if self.replaces else None,
            "channel": self.channel,
        }
        if replaced_by is not None:
            data["replaced_by"] = serial_text(replaced_by)
        if self.status is not CertificateStatus.VALID:
            data["revoked_at"] = _iso(self.revoked_at)
            data["revocation_reason"] = self.revocation_reason.value if self.revocation_reason else None
        return data


class ListedCertificate(NamedTuple):
    """The few facts ``privca list`` shows in its table: all in the ledger's listing index, so listing tens of
    thousands of a million certificates reads no certificate row (see ``certificates.listing``). A named tuple,
    not a dataclass: made 40,000 times by one ``list``, where a frozen dataclass costs three times as much."""

    serial: str
    status: CertificateStatus
    shown_status: str  # ``expired`` for a valid certificate past its notAfter at the time of the listing
    profile: str
    subject: str
    not_after: datetime
    expires: str  # not_after as the ledger keeps it (ISO 8601 UTC): what the table prints


@dataclass(frozen=True)
class CrossCertificate:
    """A certificate one root generation signed for another (a root rollover's "new with old" and "old with new")."""

    id: int
    issuer_ca_id: int
    subject_ca_id: int
    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    created_at: datetime
    pem: str

    @classmethod
    def from_row(cls, row: "sqlite3.Row") -> "CrossCertificate":
        return cls(
            id=int(row["id"]), issuer_ca_id=int(row["issuer_ca_id"]), subject_ca_id=int(row["subject_ca_id"]),
            serial=row["serial"], subject=row["subject"], issuer=row["issuer"],
            not_before=parse_time(row["not_before"]), not_after=parse_time(row["not_after"]),
            fingerprint_sha256=row["fingerprint_sha256"], created_at=parse_time(row["created_at"]), pem=row["pem"],
        )

    @cached_property
    def certificate(self) -> "x509.Certificate":
        return _load_certificate(self.pem)

    def valid_at(self, now: datetime) -> bool:
        return self.not_before <= now <= self.not_after

    def to_json(self, names: Mapping[int, str] | None = None) -> Json:
        def name_of(ca_id: int) -> str | int:
            return (names or {}).get(ca_id, ca_id)

        return {
            "serial": serial_text(self.serial), "subject": self.subject, "issuer": self.issuer,
            "signed_by": name_of(self.issuer_ca_id), "carries": name_of(self.subject_ca_id),
            "not_before": iso(self.not_before), "not_after": iso(self.not_after),
            "fingerprint_sha256": self.fingerprint_sha256, "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class CrlRecord:
    """The latest CRL a CA signed, as kept for ``privca publish`` and ``privca serve``."""

    ca_id: int
    crl_number: int
    this_update: datetime
    next_update: datetime
    entries: int
    sha256: str
    der: bytes = field(repr=False)

    @classmethod
    def from_row(cls, row: "sqlite3.Row") -> "CrlRecord":
        return cls(ca_id=int(row["ca_id"]), crl_number=int(row["crl_number"]),
                   this_update=parse_time(row["this_update"]), next_update=parse_time(row["next_update"]),
                   entries=int(row["entries"]), sha256=row["sha256"], der=bytes(row["der"]))

    def to_json(self, names: Mapping[int, str] | None = None) -> Json:
        return {"ca": (names or {}).get(self.ca_id, self.ca_id), "crl_number": self.crl_number,
                "this_update": iso(self.this_update), "next_update": iso(self.next_update), "entries": self.entries,
                "sha256": self.sha256}


@dataclass(frozen=True)
class Event:
    """One entry of the append-only events log; ``hash`` chains it to every event before it."""

    id: int
    stored_at: str  # the time as recorded (and hashed): ``at`` is it as a datetime
    action: str
    actor: str
    serial: str | None
    details_text: str
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: "sqlite3.Row") -> "Event":
        return cls(id=int(row["id"]), stored_at=str(row["at"]), action=row["action"], actor=row["actor"],
                   serial=row["serial"], details_text=str(row["details"]), prev_hash=row["prev_hash"],
                   hash=row["hash"])

    @property
    def at(self) -> datetime:
        return parse_time(self.stored_at)

    @cached_property
    def details(self) -> Json:
        """The event's facts; an empty dict when the stored text is not a JSON object (``verify`` reports it)."""
        try:
            value = json.loads(self.details_text)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def to_json(self) -> Json:
        return {"id": self.id, "at": self.stored_at, "action": self.action, "actor": self.actor, "serial": self.serial,
                "details": self.details, "hash": self.hash}


@dataclass(frozen=True)
class IssuerSummary:
    """Per issuing CA: when it first issued, its next valid certificate to expire, and how many are valid."""

    ca_id: int
    first_issued: datetime | None
    next_expiry: datetime | None
    valid: int
