"""Cross-certificates between root generations, made by a root rollover."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from privca.ledger.db import Ledger
from privca.ledger.records import CrossCertificate, iso


def all_crosses(ledger: Ledger, now: datetime | None = None) -> list[CrossCertificate]:
    """The cross-certificates (valid at ``now`` when given), oldest first. ``privca export pem`` adds them after
    the CA certificates."""
    found = [CrossCertificate.from_row(row)
             for row in ledger.conn.execute("SELECT * FROM cross_certificates ORDER BY id")]
    return found if now is None else [cross for cross in found if cross.valid_at(now.replace(microsecond=0))]


def insert(ledger: Ledger, cross: CrossCertificate) -> CrossCertificate:
    """Record a cross-certificate (its ``id`` is ignored); returns it with the id the ledger gave it."""
    cursor = ledger.conn.execute(
        "INSERT INTO cross_certificates (issuer_ca_id, subject_ca_id, serial, subject, issuer, not_before, not_after,"
        " fingerprint_sha256, created_at, pem) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (cross.issuer_ca_id, cross.subject_ca_id, cross.serial, cross.subject, cross.issuer, iso(cross.not_before),
         iso(cross.not_after), cross.fingerprint_sha256, iso(cross.created_at), cross.pem))
    return replace(cross, id=int(cursor.lastrowid or 0))
