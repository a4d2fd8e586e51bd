"""The ledger's SQLite database: the connection, its write transactions and the schema migrations.

SQLite in WAL mode. The schema is created and upgraded by sqlite-utils migrations, recorded in its
``_sqlite_migrations`` table (the one record of which migrations ran), and the rare writes (a new CA generation, a
cross-certificate) go through sqlite-utils too (``Ledger.tables``). Importing sqlite_utils costs ~100 ms on a quiet
machine (160-600 ms on a loaded one), more than a whole ``privca list`` or ``issue`` otherwise spends in the
ledger: so opening the ledger only counts the recorded migrations with one query, and the reads and writes that
every command makes (and the hot paths measured in docs/performance.md) are plain SQL in this package.

Writes happen inside ``Ledger.write()``, a ``BEGIN IMMEDIATE`` transaction: two privca processes never
interleave, and a crash leaves either the whole change or none of it.

Only the ledger package (``cas``, ``certificates``, ``crosses``, ``crls``, ``events``, ``snapshot``) uses the
connection; the rest of privca calls their typed functions and gets records (``privca.ledger.records``).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from privca.errors import LedgerError
from privca.ledger import chain, rows
from privca.ledger.records import iso

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

__all__ = ["BUSY_TIMEOUT_MS", "Ledger", "MIGRATIONS", "actor", "inserted_id", "iso"]

BUSY_TIMEOUT_MS = 60_000


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


#: A migration step: an SQL statement, or a function of the connection for a step SQL cannot say.
Step = str | Callable[[sqlite3.Connection], None]


def record_baseline(conn: sqlite3.Connection) -> None:
    """One ``baseline`` event carrying the digest of every state row there is, so that a store made before rows
    were bound to events verifies from here on (``privca verify`` then vouches for the rows as they were at the
    upgrade, not before). A new, empty ledger needs none."""
    if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None and not any(
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in rows.TRACKED):
        return
    digests: dict[str, str] = {}
    for table, pk in rows.TRACKED.items():
        cursor = conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT * FROM {table}")
        names = [column[0] for column in cursor.description]
        index = names.index(pk)
        for values in cursor:
            digests[rows.key(table, values[index])] = rows.digest(names, values)
    # Dated like the newest event (the clock check compares new events with it), else now.
    newest = conn.execute("SELECT max(at) FROM events").fetchone()[0]
    at = str(newest) if newest else iso(datetime.now(timezone.utc))
    chain.append(conn, [chain.PendingEvent(at, "baseline", {"upgraded_at": iso(datetime.now(timezone.utc)),
                                                            chain.ROWS: digests}, None)], None, actor())


# Schema migrations, in order. Each is (name, steps); append new ones, never edit an applied one.
MIGRATIONS: list[tuple[str, tuple[Step, ...]]] = [
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
    # Stores made before this release also counted their migrations in PRAGMA user_version. The
    # _sqlite_migrations table is now the only record; the counter is cleared so that nothing reads a stale one.
    ("0005_one_migration_record", (
        "PRAGMA user_version = 0",
    )),
    # Automatic enrollment (SCEP, EST): how each certificate was requested, the one-time challenge passwords
    # (only their SHA-256: each is a random 120-bit secret, so a fast hash cannot be searched), and the requests
    # that were granted or wait for an operator. Refused requests leave only their refusal event.
    ("0006_enrollment", (
        "ALTER TABLE certificates ADD COLUMN channel TEXT NOT NULL DEFAULT 'cli'",
        """CREATE TABLE enroll_challenges (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            profile TEXT NOT NULL,
            names TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            used_by TEXT
        )""",
        """CREATE TABLE enroll_requests (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            profile TEXT NOT NULL,
            subject TEXT NOT NULL,
            sans TEXT NOT NULL,
            csr_der BLOB NOT NULL,
            requester_der BLOB,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
            received_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT,
            serial TEXT,
            renews TEXT
        )""",
        "CREATE INDEX enroll_requests_transaction ON enroll_requests (channel, transaction_id)",
        "CREATE INDEX enroll_requests_status ON enroll_requests (status, id)",
    )),
    # Every state row bound to the events log (privca/ledger/rows.py): from now on each write records the digest
    # of the rows it changed; a store made before records one baseline event with the digest of every row.
    ("0007_row_digests", (
        record_baseline,
    )),
    # Seals (privca/ledger/chain.py): the head of the events log signed by a CA key, by each write command that
    # unlocked one, so that the log proves itself to anyone holding the CA certificates alone.
    ("0008_seals", (
        """CREATE TABLE seals (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,
            head TEXT NOT NULL,
            at TEXT NOT NULL,
            ca_id INTEGER NOT NULL,
            ca_fingerprint TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            signature BLOB NOT NULL
        )""",
    )),
]
MIGRATION_SET = "privca"


def _migrations() -> "Migrations":
    """The MIGRATIONS list as a sqlite-utils migration set (recorded in its _sqlite_migrations table)."""
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)
    for name, statements in MIGRATIONS:
        def apply(db: "Database", statements: tuple[Step, ...] = statements) -> None:
            for statement in statements:
                if isinstance(statement, str):
                    db.execute(statement)
                else:
                    statement(db.conn)

        migrations(name=name)(apply)
    return migrations


def inserted_id(ledger: "Ledger", last_pk: object) -> int:
    """The id SQLite gave the row sqlite-utils just inserted."""
    if not isinstance(last_pk, int):
        raise LedgerError(f"{ledger.path}: the ledger did not say which id it gave a new row")
    return last_pk


class Ledger:
    """A connection to one store's ledger."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The events the open write transaction records (``events.record``), added when it commits.
        self.pending = chain.Pending()
        #: A CA key this process unlocked: each write transaction is then sealed with it (``privca.ledger.chain``).
        self.sealer: chain.Sealer | None = None
        #: Told of each seal this process made, once it is committed (the command line remembers it as checked).
        self.on_sealed: Callable[[chain.SealMade], None] | None = None
        self._tracking = False
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise LedgerError(f"{path}: cannot switch the ledger to WAL mode (got {mode})")
            # FULL: a committed certificate survives a power cut, not only a crash.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self._applied_migrations() < len(MIGRATIONS):
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: cannot open the ledger ({exc})") from None

    def _applied_migrations(self) -> int:
        """How many of privca's migrations the ledger records as applied (0 for a new, empty ledger)."""
        try:
            row = self._conn.execute("SELECT count(*) FROM _sqlite_migrations WHERE migration_set = ?",
                                    (MIGRATION_SET,)).fetchone()
        except sqlite3.OperationalError:  # no such table: nothing was ever applied
            return 0
        return int(row[0])

    def _migrate(self) -> None:
        from sqlite_utils import Database

        self._conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait and then see it done
        try:
            if self._applied_migrations() < len(MIGRATIONS):
                _migrations().apply(Database(self._conn))
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()

    def tables(self) -> "Database":
        """sqlite-utils on this connection, for the ledger's rare writes. Inside ``write()`` its inserts join the
        open transaction (sqlite-utils nests them in a savepoint), so they commit or roll back with it."""
        from sqlite_utils import Database

        return Database(self._conn, recursive_triggers=False, execute_plugins=False)

    def serialize(self) -> bytes:
        """The whole database as bytes (SQLite's online backup API): what the ledger holds at this moment, or
        within ``snapshot()`` at that moment."""
        copy = sqlite3.connect(":memory:")
        try:
            self._conn.backup(copy)
            return copy.serialize()
        finally:
            copy.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: everything read inside it comes from the same moment, while others write."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[None]:
        """One all-or-nothing write transaction, taken before anything is read for it."""
        if not self._tracking:  # outside the transaction, so that a rollback does not take the triggers with it
            chain.install_tracking(self._conn)
            self._tracking = True
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"{self.path}: the ledger is busy ({exc}); try again") from None
        self.pending = chain.Pending()
        try:
            chain.forget_touched(self._conn)
            yield
            # Every row the transaction changed gets its digest into an event, and the head its seal.
            made = chain.flush(self._conn, self.pending, self.sealer, actor())
            self._conn.execute("COMMIT")
        except BaseException:
            self.pending = chain.Pending()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        if made is not None and self.on_sealed is not None:
            self.on_sealed(made)
