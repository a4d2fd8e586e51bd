"""Ledger queries for the revocation status services (pre-signed OCSP, the live responder, health and metrics)."""

from __future__ import annotations

from datetime import datetime

from privca.ledger.db import Ledger
from privca.ledger.records import RevocationReason, iso, parse_time

#: revoked (or held), since when, why: what an OCSP answer says of a certificate (as ``certificates.status_under``)
Status = tuple[bool, datetime | None, RevocationReason | None]


def unexpired_issued(ledger: Ledger, ca_id: int, now: datetime) -> list[tuple[str, Status]]:
    """``(serial, status)`` of every certificate and sub-CA that ``ca_id`` issued and that has not expired at
    ``now``: those a status answer may still be asked about."""
    rows = ledger._conn.execute(
        "SELECT serial, status, revoked_at, revocation_reason FROM certificates WHERE issuer_id = ? AND not_after > ?"
        " UNION ALL SELECT serial, status, revoked_at, revocation_reason FROM cas WHERE parent_id = ? AND not_after > ?",
        (ca_id, iso(now), ca_id, iso(now)),
    ).fetchall()
    found: list[tuple[str, Status]] = []
    for serial, status, revoked_at, reason in rows:
        if status in ("revoked", "hold"):
            found.append((serial, (True, parse_time(revoked_at), None if reason is None else RevocationReason(reason))))
        else:
            found.append((serial, (False, None, None)))
    return found


def ca_table_version(ledger: Ledger) -> tuple[tuple[object, ...], ...]:
    """What decides which CAs answer OCSP and where, as plain values: cheap enough to compare on every request."""
    return tuple(tuple(row) for row in ledger._conn.execute(
        "SELECT id, status, not_after, ocsp_url, crl_url, key_ref FROM cas ORDER BY id"))


def certificates_by_status_and_profile(ledger: Ledger, now: datetime) -> list[tuple[str, str, int]]:
    """``(status, profile, count)`` over all issued certificates; status is valid, revoked, hold or expired."""
    return [(str(status), str(profile), int(count)) for status, profile, count in ledger._conn.execute(
        "SELECT CASE WHEN status = 'valid' AND not_after <= ? THEN 'expired' ELSE status END, profile, COUNT(*)"
        " FROM certificates GROUP BY 1, 2", (iso(now),))]


def soonest_expiry(ledger: Ledger, now: datetime) -> datetime | None:
    """notAfter of the valid certificate that expires first after ``now``, or None."""
    row = ledger._conn.execute(
        "SELECT MIN(not_after) FROM certificates WHERE status = 'valid' AND not_after > ?", (iso(now),)).fetchone()
    return None if row is None or row[0] is None else parse_time(row[0])


def last_event_at(ledger: Ledger, action: str) -> datetime | None:
    """When the latest event of ``action`` (``backup``, ``crl``...) was recorded, or None."""
    row = ledger._conn.execute("SELECT MAX(at) FROM events WHERE action = ?", (action,)).fetchone()
    return None if row is None or row[0] is None else parse_time(row[0])


def unreadable(ledger: Ledger) -> str | None:
    """Why the ledger cannot be read right now (damaged, locked out, gone), or None when a query answers."""
    import sqlite3

    try:
        ledger._conn.execute("SELECT COUNT(*) FROM cas").fetchone()
    except sqlite3.Error as exc:
        return f"{ledger.path}: cannot read the ledger ({exc})"
    return None
