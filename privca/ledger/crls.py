"""The latest CRL each CA signed, which ``privca publish`` and ``privca serve`` hand out (the history of CRLs is in
the events log)."""

from __future__ import annotations

from datetime import datetime

from privca.ledger.db import Ledger
from privca.ledger.records import CrlRecord, iso, parse_time


def latest(ledger: Ledger, ca_id: int) -> CrlRecord | None:
    row = ledger._conn.execute("SELECT * FROM crls WHERE ca_id = ?", (ca_id,)).fetchone()
    return None if row is None else CrlRecord.from_row(row)


def fingerprint(ledger: Ledger, ca_id: int) -> tuple[str, datetime] | None:
    """The SHA-256 and thisUpdate of the CA's latest CRL, without reading the CRL (an HTTP ETag check)."""
    row = ledger._conn.execute("SELECT sha256, this_update FROM crls WHERE ca_id = ?", (ca_id,)).fetchone()
    return None if row is None else (str(row[0]), parse_time(row[1]))


def next_updates(ledger: Ledger) -> dict[int, datetime]:
    """When each CA's latest CRL expires (its nextUpdate), by CA id."""
    return {int(row[0]): parse_time(row[1]) for row in ledger._conn.execute("SELECT ca_id, next_update FROM crls")}


def keep(ledger: Ledger, crl: CrlRecord) -> None:
    """Keep ``crl`` as its CA's latest (replacing the one before)."""
    ledger._conn.execute(
        "INSERT OR REPLACE INTO crls (ca_id, crl_number, this_update, next_update, entries, sha256, der)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (crl.ca_id, crl.crl_number, iso(crl.this_update), iso(crl.next_update), crl.entries, crl.sha256, crl.der),
    )
