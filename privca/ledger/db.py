"""The ledger: every CA and certificate privca has issued, and an append-only, hash-chained events log.

SQLite in WAL mode. The schema is created and upgraded with sqlite-utils migrations. Hot paths (issuing, listing)
use the stdlib connection directly: importing sqlite_utils costs ~100 ms, so it is imported only when the schema
is behind (``PRAGMA user_version`` says how many migrations have run).

Writes happen inside ``Ledger.write()``, a ``BEGIN IMMEDIATE`` transaction: two privca processes never
interleave, and a crash leaves either the whole change or none of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from privca.errors import LedgerError

BUSY_TIMEOUT_MS = 60_000
GENESIS_HASH = "0" * 64
#: The event actions that put a certificate on record (``privca verify`` checks every row has one).
ISSUING_ACTIONS = ("issue", "renew")


def iso(moment: datetime) -> str:
    """UTC timestamps as stored in the ledger: ISO 8601 with a Z, so text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def actor() -> str:
    """Who did it, for the ledger: the operating-system user and host (the same for a whole process)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers; the uid is still meaningful
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# Schema migrations, in order. Each is (name, SQL statements); append new ones, never edit an applied one.
MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    ("0001_initial", (
        """CREATE TABLE cas (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
            generation INTEGER NOT NULL,
            parent_id INTEGER REFERENCES cas(id),
            subject TEXT NOT NULL,
            serial TEXT NOT NULL,
            key_type TEXT NOT NULL,
            key_ref TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired', 'revoked')),
            fingerprint_sha256 TEXT NOT NULL,
            crl_url TEXT,
            ocsp_url TEXT,
            crl_number INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            pem TEXT NOT NULL
        )""",
        """CREATE TABLE certificates (
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL,
            issuer_id INTEGER NOT NULL REFERENCES cas(id),
            profile TEXT NOT NULL,
            subject TEXT NOT NULL,
            sans TEXT NOT NULL,
            eku TEXT NOT NULL,
            key_type TEXT NOT NULL,
            key_size TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked', 'hold')),
            revoked_at TEXT,
            revocation_reason TEXT,
            fingerprint_sha256 TEXT NOT NULL,
            csr_sha256 TEXT,
            requested_eku TEXT,
            replaces TEXT,
            issued_by TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            cert_path TEXT,
            chain_path TEXT,
            fullchain_path TEXT,
            pem TEXT NOT NULL,
            UNIQUE (issuer_id, serial)
        )""",
        "CREATE INDEX certificates_serial ON certificates (serial)",
        "CREATE INDEX certificates_status_expiry ON certificates (status, not_after)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            serial TEXT,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
    )),
    # Renewal and CA rotation: the CSR each certificate was issued from (so it can be renewed with the same key
    # after proof of possession), which CA generation replaced which, and cross-certificates between roots.
    ("0002_rotation", (
        "ALTER TABLE certificates ADD COLUMN csr_der BLOB",
        "CREATE INDEX certificates_replaces ON certificates (replaces)",
        "CREATE INDEX certificates_issuer_expiry ON certificates (issuer_id, not_after)",
        "ALTER TABLE cas ADD COLUMN replaced_by INTEGER REFERENCES cas(id)",
        "ALTER TABLE cas ADD COLUMN retired_at TEXT",
        """CREATE TABLE cross_certificates (
            id INTEGER PRIMARY KEY,
            issuer_ca_id INTEGER NOT NULL REFERENCES cas(id),
            subject_ca_id INTEGER NOT NULL REFERENCES cas(id),
            serial TEXT NOT NULL,
            subject TEXT NOT NULL,
            issuer TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            fingerprint_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            pem TEXT NOT NULL,
            UNIQUE (issuer_ca_id, serial),
            CHECK (issuer_ca_id <> subject_ca_id)
        )""",
    )),
    # Revocation of CAs (an intermediate goes on its root's CRL), a count of revocation changes not yet on a
    # signed CRL (so `privca status` can say a CRL is due), and the latest signed CRL of each CA, which
    # `privca publish` and `privca serve` hand out. CRL history is in the events log.
    ("0003_revocation", (
        "ALTER TABLE cas ADD COLUMN revoked_at TEXT",
        "ALTER TABLE cas ADD COLUMN revocation_reason TEXT",
        "ALTER TABLE cas ADD COLUMN crl_changes INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE crls (
            ca_id INTEGER PRIMARY KEY REFERENCES cas(id),
            crl_number INTEGER NOT NULL,
            this_update TEXT NOT NULL,
            next_update TEXT NOT NULL,
            entries INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            der BLOB NOT NULL
        )""",
        # Covers the CRL query: only revoked and held rows, so signing a CRL never reads certificate PEMs.
        """CREATE INDEX certificates_revoked ON certificates (issuer_id, not_after, serial, revoked_at,
            revocation_reason) WHERE status IN ('revoked', 'hold')""",
    )),
    # privca list reads status, expiry, serial, profile and subject of thousands of rows: an index that holds
    # them answers it without reading any certificate row (55 ms instead of 190 ms for 40,000 of 1,000,000).
    ("0004_listing_index", (
        "CREATE INDEX certificates_listing ON certificates (status, not_after, id, serial, profile, subject)",
    )),
]
LATEST_SCHEMA = len(MIGRATIONS)


def _migrations() -> Any:
    """The MIGRATIONS list as a sqlite-utils migration set (recorded in its _sqlite_migrations table)."""
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("privca")
    for name, statements in MIGRATIONS:
        def apply(db: Any, statements: tuple[str, ...] = statements) -> None:
            for statement in statements:
                db.execute(statement)

        migrations(name=name)(apply)
    return migrations


def event_hash(prev_hash: str, event_id: int, at: str, action: str, who: str, serial: str | None, details: str) -> str:
    """The chain link of one event: editing or deleting any earlier row breaks every later hash."""
    payload = json.dumps([prev_hash, event_id, at, action, who, serial, details], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class Ledger:
    """A connection to one store's ledger."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise LedgerError(f"{path}: cannot switch the ledger to WAL mode (got {mode})")
            # FULL: a committed certificate survives a power cut, not only a crash.
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            if self.conn.execute("PRAGMA user_version").fetchone()[0] < LATEST_SCHEMA:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: cannot open the ledger ({exc})") from None

    def _migrate(self) -> None:
        from sqlite_utils import Database

        self.conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait and then see it done
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version < LATEST_SCHEMA:
                _migrations().apply(Database(self.conn))
                self.conn.execute(f"PRAGMA user_version = {LATEST_SCHEMA}")
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing write transaction, taken before anything is read for it."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"{self.path}: the ledger is busy ({exc}); try again") from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # --- events ---------------------------------------------------------------------------------------------

    def record_event(self, at: datetime, action: str, details: dict[str, Any], serial: str | None = None) -> None:
        """Append an event; call inside ``write()`` so the event commits with the change it describes."""
        last = self.conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        prev_hash, next_id = (last["hash"], last["id"] + 1) if last else (GENESIS_HASH, 1)
        when, who, text = iso(at), actor(), json.dumps(details, sort_keys=True, separators=(",", ":"))
        digest = event_hash(prev_hash, next_id, when, action, who, serial, text)
        self.conn.execute(
            "INSERT INTO events (id, at, action, actor, serial, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
            (next_id, when, action, who, serial, text, prev_hash, digest),
        )

    def record_events(self, at: datetime, action: str, items: Sequence[tuple[dict[str, Any], str | None]]) -> None:
        """Append many events of one kind at once (a batch issue): one query for the chain head, one insert."""
        last = self.conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        prev_hash, next_id = (last["hash"], last["id"] + 1) if last else (GENESIS_HASH, 1)
        when, who = iso(at), actor()
        rows = []
        for details, serial in items:
            text = json.dumps(details, sort_keys=True, separators=(",", ":"))
            digest = event_hash(prev_hash, next_id, when, action, who, serial, text)
            rows.append((next_id, when, action, who, serial, text, prev_hash, digest))
            prev_hash, next_id = digest, next_id + 1
        self.conn.executemany(
            "INSERT INTO events (id, at, action, actor, serial, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)", rows
        )

    def events(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM events ORDER BY id").fetchall()

    # --- CAs ------------------------------------------------------------------------------------------------

    def cas(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM cas ORDER BY id").fetchall()

    def ca(self, ca_id: int) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM cas WHERE id = ?", (ca_id,)).fetchone()
        if row is None:
            raise LedgerError(f"CA #{ca_id}: not in the ledger")
        return row

    def active_ca(self, role: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM cas WHERE role = ? AND status = 'active' ORDER BY generation DESC LIMIT 1", (role,)
        ).fetchone()

    def latest_ca(self, role: str) -> sqlite3.Row | None:
        """The newest generation of ``role``, whatever its status (a revoked issuing CA still names the next)."""
        return self.conn.execute(
            "SELECT * FROM cas WHERE role = ? ORDER BY generation DESC LIMIT 1", (role,)
        ).fetchone()

    def insert_ca(self, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        cursor = self.conn.execute(f"INSERT INTO cas ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        return int(cursor.lastrowid or 0)

    def retire_ca(self, ca_id: int, replaced_by: int, at: datetime) -> None:
        """Mark a CA generation retired: still trusted and still publishing its CRL, no longer issuing."""
        self.conn.execute("UPDATE cas SET status = 'retired', replaced_by = ?, retired_at = ? WHERE id = ?",
                          (replaced_by, iso(at), ca_id))

    def insert_cross_certificate(self, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        cursor = self.conn.execute(f"INSERT INTO cross_certificates ({columns}) VALUES ({', '.join('?' * len(row))})",
                                   tuple(row.values()))
        return int(cursor.lastrowid or 0)

    def cross_certificates(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM cross_certificates ORDER BY id").fetchall()

    def last_expiry_signed_by(self, ca_id: int) -> str | None:
        """The latest notAfter among the leaf certificates and cross-certificates this CA signed (CA certificates
        it signed are left to the caller, whose rule for them depends on the child CA's own status)."""
        row = self.conn.execute(
            """SELECT max(t) FROM (
                   SELECT max(not_after) AS t FROM certificates WHERE issuer_id = ?
                   UNION ALL SELECT max(not_after) FROM cross_certificates WHERE issuer_ca_id = ?)""",
            (ca_id, ca_id),
        ).fetchone()
        return row[0]

    # --- certificates ---------------------------------------------------------------------------------------

    def insert_certificates(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO certificates ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        try:
            self.conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"{self.path}: cannot record the certificates ({exc})") from None

    def certificate(self, serial: str) -> sqlite3.Row:
        """The one certificate with this (normalised) serial; LedgerError when there is none, or several.

        Serials are random and 159 bits long, so two CAs issuing the same one does not happen by chance; if it
        ever does, privca refuses to guess which one a command means.
        """
        rows = self.certificates_by_serial(serial)
        if not rows:
            raise LedgerError(f"serial {serial}: no such certificate in the ledger; see: privca list")
        if len(rows) > 1:
            raise LedgerError(f"serial {serial}: {len(rows)} certificates from different CAs share it; the ledger "
                              "was changed outside privca (privca verify)")
        return rows[0]

    def certificates_by_serial(self, serial: str) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM certificates WHERE serial = ?", (serial,)).fetchall()

    def issuer_summary(self, now: datetime) -> dict[int, sqlite3.Row]:
        """Per issuing CA: when it first issued, its next valid certificate to expire, and how many are valid."""
        stamp = iso(now)
        rows = self.conn.execute(
            # next_expiry skips certificates already renewed: their renewal, not they, is what will be in service.
            """SELECT issuer_id, min(issued_at) AS first_issued,
                      min(CASE WHEN status = 'valid' AND not_after >= ? AND NOT EXISTS (
                              SELECT 1 FROM certificates AS renewal
                              WHERE renewal.replaces = certificates.serial AND renewal.status = 'valid')
                          THEN not_after END) AS next_expiry,
                      sum(CASE WHEN status = 'valid' AND not_after >= ? THEN 1 ELSE 0 END) AS valid
               FROM certificates GROUP BY issuer_id""",
            (stamp, stamp),
        )
        return {int(row["issuer_id"]): row for row in rows}

    def profiles_in_use(self, now: datetime) -> list[str]:
        """Profiles of the valid, unexpired certificates."""
        rows = self.conn.execute(
            "SELECT DISTINCT profile FROM certificates WHERE status = 'valid' AND not_after >= ? ORDER BY profile",
            (iso(now),),
        )
        return [row[0] for row in rows]

    def successors(self, serial: str) -> list[sqlite3.Row]:
        """Certificates recorded as renewals of ``serial`` (their ``replaces`` column), newest first."""
        return self.conn.execute("SELECT * FROM certificates WHERE replaces = ? ORDER BY id DESC", (serial,)).fetchall()

    def query_certificates(
        self,
        *,
        now: datetime,
        statuses: Sequence[str] = (),
        expiring_within_days: int | None = None,
        profile: str | None = None,
        limit: int | None = None,
        columns: Sequence[str] = ("*",),
    ) -> Iterator[sqlite3.Row]:
        """Certificates matching every filter given, soonest expiry first.

        ``statuses`` may hold ``valid`` (unrevoked and not expired), ``expired``, ``revoked`` and ``hold``.
        ``columns`` narrows what is read: status, expiry, id, serial, profile and subject come from the listing
        index alone.
        """
        from datetime import timedelta

        clauses: list[str] = []
        params: list[Any] = []
        stamp = iso(now)
        status_sql = {
            "valid": "(status = 'valid' AND not_after >= ?)",
            "expired": "(status = 'valid' AND not_after < ?)",
            "revoked": "(status = 'revoked')",
            "hold": "(status = 'hold')",
        }
        if statuses:
            parts = []
            for status in statuses:
                parts.append(status_sql[status])
                if "?" in status_sql[status]:
                    params.append(stamp)
            clauses.append("(" + " OR ".join(parts) + ")")
        if expiring_within_days is not None:
            # An index range on (status, not_after): fast even on a million rows.
            clauses.append("status = 'valid' AND not_after >= ? AND not_after <= ?")
            params += [stamp, iso(now + timedelta(days=expiring_within_days))]
        if profile is not None:
            clauses.append("profile = ?")
            params.append(profile)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT {', '.join(columns)} FROM certificates{where} ORDER BY not_after, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return iter(self.conn.execute(sql, params))
