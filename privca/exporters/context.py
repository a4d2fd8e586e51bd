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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from privca.errors import ExportError
from privca.ledger.db import iso
from privca.common.names import common_name

if TYPE_CHECKING:
    from privca.ledger.store import Store

TRUSTED_STATUSES = ("active", "retired")


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
    subject: str               # RFC 4514, as Java and Cisco Unified OS show it: "CN=..., O=..."
    subject_openssl: str       # OpenSSL's one-line form, as Expressway and Meeting Server show it
    common_name: str
    issuer: str
    issuer_openssl: str
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
        return {"name": self.name, "kind": self.kind, "generation": self.generation, "status": self.status,
                "subject": self.subject,
                "not_after": self.not_after, "sha256": self.sha256, "sha1": self.sha1}


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


def _subject_openssl(name: Any) -> str:
    """OpenSSL 1.1+/3.x default ``-nameopt oneline`` style: most general attribute first, ``KEY = value``."""
    parts = []
    for rdn in name.rdns:
        parts.append(" + ".join(f"{attr.rfc4514_attribute_name} = {attr.value}" for attr in rdn))
    return ", ".join(parts)


def _subject_rfc4514(name: Any) -> str:
    """RFC 4514 with a space after each comma, the way Java's X500Principal and Cisco Unified OS print a name."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


def _depth(row_id: int, parents: Mapping[int, int | None]) -> int:
    depth, seen, current = 0, {row_id}, parents.get(row_id)
    while current is not None and current in parents and current not in seen:
        seen.add(current)
        depth += 1
        current = parents.get(current)
    return depth


def build_context(rows: Iterable[Any], now: datetime) -> TrustContext:
    """The trusted CAs among ledger ``cas`` rows (sqlite3.Row or dicts) at ``now``, parents before children.

    Order: by depth below a root, then generation, then ledger id, so the same ledger always gives the same order
    and every administrator uploads a root before the intermediates it signed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    stamp = iso(now)
    kept = [row for row in rows if row["status"] in TRUSTED_STATUSES and row["not_after"] > stamp]
    if not kept:
        raise ExportError("export: no CA in the store is still trusted (all are revoked or expired); "
                          "create a new generation first: privca rotate root")
    parents = {int(row["id"]): (int(row["parent_id"]) if row["parent_id"] is not None else None) for row in kept}
    names = {int(row["id"]): str(row["name"]) for row in kept}
    kept.sort(key=lambda row: (_depth(int(row["id"]), parents), int(row["generation"]), int(row["id"])))

    certs = [x509.load_pem_x509_certificate(str(row["pem"]).encode()) for row in kept]
    self_signed_subjects = {cert.subject for cert in certs if cert.subject == cert.issuer}
    cas = []
    for row, cert in zip(kept, certs, strict=True):
        der = cert.public_bytes(Encoding.DER)
        parent_id = parents[int(row["id"])]
        self_signed = cert.subject == cert.issuer
        cas.append(TrustedCA(
            name=str(row["name"]),
            generation=int(row["generation"]),
            status=str(row["status"]),
            subject=_subject_rfc4514(cert.subject),
            subject_openssl=_subject_openssl(cert.subject),
            common_name=common_name(cert.subject, str(row["name"])),
            issuer=_subject_rfc4514(cert.issuer),
            issuer_openssl=_subject_openssl(cert.issuer),
            self_signed=self_signed,
            cross=not self_signed and cert.subject in self_signed_subjects,
            serial=format(cert.serial_number, "X"),
            not_before=iso(cert.not_valid_before_utc),
            not_after=iso(cert.not_valid_after_utc),
            key_type=str(row["key_type"]),
            sha256=colon_hex(hashlib.sha256(der).digest()),
            sha1=colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
            crl_url=row["crl_url"],
            pem=cert.public_bytes(Encoding.PEM).decode(),
            der=der,
            parent=names.get(parent_id) if parent_id is not None else None,
        ))
    return TrustContext(tuple(cas))


def trust_context(store: "Store", now: datetime) -> TrustContext:
    """The trust context of a store: every CA generation still needed, plus the cross-certificates of a root
    rollover (which only the generic formats carry). A clear error when the store has no CA."""
    from privca.authority.rotation import cross_certificates, trusted_ca_rows

    ledger = store.require_ca()
    names = {int(row["id"]): row for row in ledger.cas()}
    rows: list[Any] = list(trusted_ca_rows(ledger, now))
    for cross in cross_certificates(ledger, now):
        subject, issuer = names[int(cross["subject_ca_id"])], names[int(cross["issuer_ca_id"])]
        rows.append({
            "id": -int(cross["id"]),  # its own node in the tree, below the root that signed it
            "name": f"cross-{subject['name']}-by-{issuer['name']}",
            "generation": subject["generation"],
            "status": "active",
            "parent_id": issuer["id"],
            "key_type": subject["key_type"],
            "crl_url": None,
            "not_after": cross["not_after"],
            "pem": cross["pem"],
        })
    return build_context(rows, now)
