"""Cross-certificates between root generations, made by a root rollover."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from privca.ledger.db import Ledger, inserted_id
from privca.ledger.records import CrossCertificate, iso


def all_crosses(ledger: Ledger, now: datetime | None = None) -> list[CrossCertificate]:
    """The cross-certificates (valid at ``now`` when given), oldest first. ``privca export pem`` adds them after
    the CA certificates."""
    found = [CrossCertificate.from_row(row)
             for row in ledger._conn.execute("SELECT * FROM cross_certificates ORDER BY id")]
    return found if now is None else [cross for cross in found if cross.valid_at(now.replace(microsecond=0))]


def insert(ledger: Ledger, cross: CrossCertificate) -> CrossCertificate:
    """Record a cross-certificate (its ``id`` is ignored); returns it with the id the ledger gave it. Rare (a root
    rollover), so through sqlite-utils."""
    table = ledger.tables().table("cross_certificates", pk="id")
    table.insert({
        "issuer_ca_id": cross.issuer_ca_id, "subject_ca_id": cross.subject_ca_id, "serial": cross.serial,
        "subject": cross.subject, "issuer": cross.issuer, "not_before": iso(cross.not_before),
        "not_after": iso(cross.not_after), "fingerprint_sha256": cross.fingerprint_sha256,
        "created_at": iso(cross.created_at), "pem": cross.pem,
    })
    return replace(cross, id=inserted_id(ledger, table.last_pk))
