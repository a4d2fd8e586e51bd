"""The enrollment tables: one-time challenge passwords and the requests devices sent over SCEP or EST.

Every function takes a ``Ledger``; writes are meant to run inside ``Ledger.write()`` next to the event that
describes them, so a decision and its record commit together.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from privca.ledger.db import Ledger, actor
from privca.ledger.records import IssuedCertificate, iso


@dataclass(frozen=True)
class Challenge:
    """A one-time challenge password as stored: never the password itself, only its SHA-256."""

    id: int
    profile: str
    names: tuple[str, ...]
    expires_at: str
    used_at: str | None


@dataclass(frozen=True)
class EnrollRequest:
    """A request a device sent: granted (``issued``, with the serial), or waiting for or given an operator's word."""

    id: int
    channel: str
    transaction_id: str
    profile: str
    subject: str
    sans: tuple[str, ...]
    csr_der: bytes
    requester_der: bytes | None
    status: str
    received_at: str
    decided_at: str | None
    decided_by: str | None
    serial: str | None
    renews: str | None  # serial of the certificate that authorised a renewal

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "transaction_id": self.transaction_id,
                "profile": self.profile, "subject": self.subject, "sans": list(self.sans), "status": self.status,
                "received_at": self.received_at, "decided_at": self.decided_at, "decided_by": self.decided_by,
                "serial": self.serial}


def _challenge(row: sqlite3.Row) -> Challenge:
    return Challenge(int(row["id"]), row["profile"], tuple(json.loads(row["names"])), row["expires_at"],
                     row["used_at"])


def _request(row: sqlite3.Row) -> EnrollRequest:
    return EnrollRequest(int(row["id"]), row["channel"], row["transaction_id"], row["profile"], row["subject"],
                         tuple(json.loads(row["sans"])), bytes(row["csr_der"]),
                         bytes(row["requester_der"]) if row["requester_der"] is not None else None, row["status"],
                         row["received_at"], row["decided_at"], row["decided_by"], row["serial"], row["renews"])


def add_challenge(ledger: Ledger, sha256: str, profile: str, names: list[str], now: datetime,
                  expires: datetime) -> int:
    cursor = ledger._conn.execute(
        "INSERT INTO enroll_challenges (sha256, profile, names, created_at, created_by, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", (sha256, profile, json.dumps(names), iso(now), actor(), iso(expires)))
    return int(cursor.lastrowid or 0)


def challenge_by_hash(ledger: Ledger, sha256: str) -> Challenge | None:
    row = ledger._conn.execute("SELECT * FROM enroll_challenges WHERE sha256 = ?", (sha256,)).fetchone()
    return _challenge(row) if row is not None else None


def use_challenge(ledger: Ledger, challenge_id: int, now: datetime, used_by: str) -> bool:
    """Mark a challenge used; False when another request used it first (checked and set in one statement)."""
    cursor = ledger._conn.execute(
        "UPDATE enroll_challenges SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL",
        (iso(now), used_by, challenge_id))
    return cursor.rowcount == 1


def open_challenges(ledger: Ledger, now: datetime) -> list[Challenge]:
    rows = ledger._conn.execute("SELECT * FROM enroll_challenges WHERE used_at IS NULL AND expires_at > ? ORDER BY id",
                               (iso(now),))
    return [_challenge(row) for row in rows]


def add_request(ledger: Ledger, *, channel: str, transaction_id: str, profile: str, subject: str, sans: list[str],
                csr_der: bytes, requester_der: bytes | None, status: str, now: datetime,
                serial: str | None = None, renews: str | None = None) -> int:
    cursor = ledger._conn.execute(
        "INSERT INTO enroll_requests (channel, transaction_id, profile, subject, sans, csr_der, requester_der, "
        "status, received_at, decided_at, serial, renews) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (channel, transaction_id, profile, subject, json.dumps(sans), csr_der, requester_der, status, iso(now),
         iso(now) if status != "pending" else None, serial, renews))
    return int(cursor.lastrowid or 0)


def request_by_transaction(ledger: Ledger, channel: str, transaction_id: str) -> EnrollRequest | None:
    """The latest request with this transactionID (what a SCEP CertPoll asks about)."""
    row = ledger._conn.execute("SELECT * FROM enroll_requests WHERE channel = ? AND transaction_id = ? "
                              "ORDER BY id DESC LIMIT 1", (channel, transaction_id)).fetchone()
    return _request(row) if row is not None else None


def same_request(ledger: Ledger, channel: str, transaction_id: str, csr_der: bytes,
                 renews: str | None) -> EnrollRequest | None:
    """A request sent before with the same transactionID, CSR and authority: a device retrying, not a new one.
    (Clients derive the transactionID from the key, so a renewal with the same key shares its enrollment's.)"""
    row = ledger._conn.execute(
        "SELECT * FROM enroll_requests WHERE channel = ? AND transaction_id = ? AND csr_der = ? AND renews IS ? "
        "ORDER BY id DESC LIMIT 1", (channel, transaction_id, csr_der, renews)).fetchone()
    return _request(row) if row is not None else None


def request_by_id(ledger: Ledger, request_id: int) -> EnrollRequest | None:
    row = ledger._conn.execute("SELECT * FROM enroll_requests WHERE id = ?", (request_id,)).fetchone()
    return _request(row) if row is not None else None


def requests_with_status(ledger: Ledger, status: str) -> list[EnrollRequest]:
    rows = ledger._conn.execute("SELECT * FROM enroll_requests WHERE status = ? ORDER BY id", (status,))
    return [_request(row) for row in rows]


def decide_request(ledger: Ledger, request_id: int, status: str, now: datetime, *, from_status: str,
                   serial: str | None = None) -> bool:
    """Move a request from ``from_status`` to ``status``; False when it was no longer in ``from_status``."""
    cursor = ledger._conn.execute(
        "UPDATE enroll_requests SET status = ?, decided_at = ?, decided_by = coalesce(?, decided_by), "
        "serial = coalesce(?, serial) WHERE id = ? AND status = ?",
        (status, iso(now), actor() if status in ("approved", "rejected") else None, serial, request_id, from_status))
    return cursor.rowcount == 1


def certificate_pem(ledger: Ledger, serial: str) -> str | None:
    row = ledger._conn.execute("SELECT pem FROM certificates WHERE serial = ?", (serial,)).fetchone()
    return str(row[0]) if row is not None else None


def certificate_presented(ledger: Ledger, serial: str, sha256: str) -> IssuedCertificate | None:
    """The issued certificate with this serial and SHA-256 fingerprint (a device showing one privca issued)."""
    row = ledger._conn.execute("SELECT * FROM certificates WHERE serial = ? AND fingerprint_sha256 = ?",
                              (serial, sha256)).fetchone()
    return IssuedCertificate.from_row(row) if row is not None else None


def latest_valid_with_profile(ledger: Ledger, profile: str, now: datetime) -> IssuedCertificate | None:
    """The newest valid, unexpired certificate issued under ``profile`` (the SCEP RA certificate)."""
    row = ledger._conn.execute(
        "SELECT * FROM certificates WHERE profile = ? AND status = 'valid' AND not_after > ? ORDER BY id DESC LIMIT 1",
        (profile, iso(now))).fetchone()
    return IssuedCertificate.from_row(row) if row is not None else None


def set_request_names(ledger: Ledger, request_id: int, sans: list[str]) -> None:
    """The SANs an operator grants a request whose CSR carries none."""
    ledger._conn.execute("UPDATE enroll_requests SET sans = ? WHERE id = ?", (json.dumps(sans), request_id))
