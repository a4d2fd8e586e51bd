"""What every trust bundle is made from: the CA certificates a peer must still trust, read from the ledger.

A CA generation stays in the bundles while its ledger status is ``active`` or ``retired`` and its certificate has
not expired: a retired issuing CA no longer signs, but the certificates it signed are still in service until they
expire, so peers must keep trusting it. Revoked and expired CAs are left out.

During a rotation the ledger holds several roots and issuing CAs; bundles carry all of them. A cross-certificate
(a new root's key and name, signed by the old root) shares its subject with the new self-signed root. Cisco trust
stores match CAs by subject: Unified CM replaces a trust certificate with the same subject (CUCM Security Guide
12.5(1)SU6, "Certificates") and Expressway stops at the first CN match (TAC 213872). So product bundles carry the
self-signed root and leave the cross-certificate to the generic formats, where a path builder can use it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from privca.common.names import common_name
from privca.errors import ExportError
from privca.ledger.records import CA, CAStatus, CrossCertificate, iso

if TYPE_CHECKING:
    from cryptography import x509

    from privca.ledger.store import Store

TRUSTED_STATUSES = (CAStatus.ACTIVE, CAStatus.RETIRED)


def colon_hex(digest: bytes) -> str:
    """A fingerprint as Cisco, Java and OpenSSL print it: upper-case hex pairs joined by colons."""
    return ":".join(f"{byte:02X}" for byte in digest)


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe form of a CA name: letters, digits, dots and dashes only."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.")[:limit].rstrip("-.") or "CA"


@dataclass(frozen=True)
class TrustedCA:
    """One CA certificate as the bundles and instructions show it."""

    name: str                  # the ledger's name for the CA, e.g. root-1 or issuing-2
    generation: int
    status: str                # active or retired
    subject: str               # RFC 4514, as every privca command shows a name: "CN=...,O=..."
    common_name: str
    issuer: str
    self_signed: bool
    cross: bool                # not self-signed, but shares its subject with a self-signed CA in the bundle
    serial: str                # upper-case hex
    not_before: str
    not_after: str
    key_type: str
    sha256: str
    sha1: str
    crl_url: str | None        # where this CA publishes the CRL for the certificates it signs
    pem: str
    der: bytes = field(repr=False)
    parent: str | None = None  # name of the CA in the bundle that signed this one

    @property
    def key_algorithm(self) -> str:
        return self.key_type.split(":")[0]

    @property
    def stem(self) -> str:
        """A self-explaining file name without extension, stable across exports: ``root-1_Example-Root-CA``."""
        return f"{self.name}_{slug(self.common_name)}"

    @property
    def alias(self) -> str:
        """The entry name in Java trust stores (lower case: keytool folds aliases to lower case)."""
        return self.stem.lower()

    @property
    def kind(self) -> str:
        if self.cross:
            return "cross-certificate"
        return "root CA" if self.self_signed else "intermediate CA"

    def summary(self) -> dict[str, Any]:
        """The JSON shape of a CA in ``privca export --json``."""
        return {"name": self.name, "kind": self.kind_word, "generation": self.generation, "status": self.status,
                "subject": self.subject, "not_after": self.not_after,
                # JSON fingerprints as every --json writes them (docs/json.md); people get AB:CD:... in the files.
                "fingerprint_sha256": self.sha256.replace(":", "").lower(),
                "fingerprint_sha1": self.sha1.replace(":", "").lower()}

    @property
    def kind_word(self) -> str:
        """``root``, ``intermediate`` or ``cross``: the kind as a value for scripts (``kind`` is for people)."""
        return "cross" if self.cross else "root" if self.self_signed else "intermediate"


@dataclass(frozen=True)
class TrustContext:
    """Every CA a bundle carries, parents before children, plus views the peers need."""

    cas: tuple[TrustedCA, ...]

    @property
    def anchors(self) -> tuple[TrustedCA, ...]:
        """Roots and intermediates, without cross-certificates: what a Cisco product trust store takes."""
        return tuple(ca for ca in self.cas if not ca.cross)

    @property
    def roots(self) -> tuple[TrustedCA, ...]:
        return tuple(ca for ca in self.cas if ca.self_signed)

    @property
    def intermediates(self) -> tuple[TrustedCA, ...]:
        return tuple(ca for ca in self.anchors if not ca.self_signed)

    @property
    def rotating(self) -> bool:
        """More than one generation is trusted: a root or intermediate rotation is under way."""
        return len(self.roots) > 1 or len(self.intermediates) > 1 or bool(self.cross_certificates)

    @property
    def leaf_first(self) -> tuple[TrustedCA, ...]:
        """Intermediates before the roots they chain to (the order of a Meeting Server bundle)."""
        return tuple(reversed(self.anchors))

    @property
    def cross_certificates(self) -> tuple[TrustedCA, ...]:
        return tuple(ca for ca in self.cas if ca.cross)


def _name(name: "x509.Name") -> str:
    """One style for names everywhere privca shows them (tables, JSON, audit, bundles): RFC 4514 as cryptography
    writes it. Cisco GUIs differ among themselves in spacing and order; the fingerprints are what to compare."""
    return str(name.rfc4514_string())


@dataclass(frozen=True)
class _Entry:
    """One certificate a bundle carries: a CA generation, or a cross-certificate between two roots, which sits
    below the root that signed it and carries the other root's name, key and generation."""

    key: tuple[str, int]  # ("ca", CA id) or ("cross", cross-certificate id): its node in the tree
    parent: tuple[str, int] | None
    name: str
    generation: int
    status: str
    key_type: str
    crl_url: str | None
    not_after: datetime
    pem: str

    @classmethod
    def of_ca(cls, ca: CA) -> "_Entry":
        return cls(("ca", ca.id), None if ca.parent_id is None else ("ca", ca.parent_id), ca.name, ca.generation,
                   ca.status.value, ca.key_type, ca.crl_url, ca.not_after, ca.pem)

    @classmethod
    def of_cross(cls, cross: CrossCertificate, cas_by_id: Mapping[int, CA]) -> "_Entry":
        subject, issuer = cas_by_id[cross.subject_ca_id], cas_by_id[cross.issuer_ca_id]
        return cls(("cross", cross.id), ("ca", issuer.id), f"cross-{subject.name}-by-{issuer.name}",
                   subject.generation, CAStatus.ACTIVE.value, subject.key_type, None, cross.not_after, cross.pem)


def _depth(key: tuple[str, int], parents: Mapping[tuple[str, int], tuple[str, int] | None]) -> int:
    depth, seen, current = 0, {key}, parents.get(key)
    while current is not None and current in parents and current not in seen:
        seen.add(current)
        depth += 1
        current = parents.get(current)
    return depth


def build_context(cas: Sequence[CA], now: datetime, crosses: Sequence[CrossCertificate] = (),
                  every_ca: Sequence[CA] = ()) -> TrustContext:
    """The trusted CAs among ``cas`` at ``now``, plus the ``crosses`` (cross-certificates between roots; their
    roots are looked up in ``every_ca``, default ``cas``), parents before children.

    Order: by depth below a root, then generation, then ledger id (a cross-certificate before the CA of the same
    generation), so the same ledger always gives the same order and every administrator uploads a root before the
    intermediates it signed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    by_id = {ca.id: ca for ca in (every_ca or cas)}
    entries = [_Entry.of_ca(ca) for ca in cas] + [_Entry.of_cross(cross, by_id) for cross in crosses]
    kept = [entry for entry in entries if entry.status in TRUSTED_STATUSES and entry.not_after > now]
    if not kept:
        raise ExportError("export: no CA in the store is still trusted (all are revoked or expired); "
                          "create a new generation first: privca rotate root")
    parents = {entry.key: entry.parent for entry in kept}
    names = {entry.key: entry.name for entry in kept}
    kept.sort(key=lambda entry: (_depth(entry.key, parents), entry.generation,
                                 entry.key[1] if entry.key[0] == "ca" else -entry.key[1]))

    certs = [x509.load_pem_x509_certificate(entry.pem.encode()) for entry in kept]
    self_signed_subjects = {cert.subject for cert in certs if cert.subject == cert.issuer}
    trusted = []
    for entry, cert in zip(kept, certs, strict=True):
        der = cert.public_bytes(Encoding.DER)
        self_signed = cert.subject == cert.issuer
        trusted.append(TrustedCA(
            name=entry.name,
            generation=entry.generation,
            status=entry.status,
            subject=_name(cert.subject),
            common_name=common_name(cert.subject, entry.name),
            issuer=_name(cert.issuer),
            self_signed=self_signed,
            cross=not self_signed and cert.subject in self_signed_subjects,
            serial=format(cert.serial_number, "X"),
            not_before=iso(cert.not_valid_before_utc),
            not_after=iso(cert.not_valid_after_utc),
            key_type=entry.key_type,
            sha256=colon_hex(hashlib.sha256(der).digest()),
            sha1=colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
            crl_url=entry.crl_url,
            pem=cert.public_bytes(Encoding.PEM).decode(),
            der=der,
            parent=names.get(entry.parent) if entry.parent is not None else None,
        ))
    return TrustContext(tuple(trusted))


def trust_context(store: "Store", now: datetime) -> TrustContext:
    """The trust context of a store: every CA generation still needed, plus the cross-certificates of a root
    rollover (which only the generic formats carry). A clear error when the store has no CA."""
    from privca.ledger import cas, crosses

    ledger = store.require_ca()
    return build_context(cas.trusted(ledger, now), now, crosses.all_crosses(ledger, now), cas.all_cas(ledger))
