"""The write side of the ledger's proof: what a write transaction adds to the events log, and its seal.

Inside ``Ledger.write()`` the events a command records wait in a list (``Pending``), and SQLite triggers (temporary:
they exist only on privca's own connection, once it first writes) note every state row the transaction inserts,
updates or deletes. Just before the commit, ``flush`` reads those rows once, adds the digest of each
(``privca.ledger.rows``) to the events (a certificate's to the event naming its serial, every other row's to the
transaction's last event), chains the events and inserts them. So no row changes without an event saying what it
became, and an edit made outside privca no longer matches the last digest on record.

When the command unlocked a CA key (``Ledger.sealer``), the transaction is also sealed: the key signs the head of
the chain (event count, head hash, time, CA), stored in ``seals``. A hash chain anyone can recompute; a seal only
the CA key can make, and ``privca verify`` checks it with the CA's certificate alone.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

from privca.errors import LedgerError
from privca.ledger import rows

GENESIS_HASH = "0" * 64
#: The detail key under which an event carries its rows' digests, and the one that says its transaction was sealed.
ROWS, SEALED = "rows", "sealed"
_TOUCHED = "temp.privca_touched"
_INSERT_EVENT = "INSERT INTO events (id, at, action, actor, serial, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)"
_INSERT_SEAL = ("INSERT INTO seals (count, head, at, ca_id, ca_fingerprint, algorithm, signature) "
                "VALUES (?,?,?,?,?,?,?)")
SEAL_CONTEXT = b"privca ledger seal v1\n"


def event_hash(prev_hash: str, event_id: int, at: str, action: str, who: str, serial: str | None, details: str) -> str:
    """The chain link of one event: editing or deleting any earlier row breaks every later hash."""
    payload = json.dumps([prev_hash, event_id, at, action, who, serial, details], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def seal_payload(count: int, head: str, at: str, ca_id: int, ca_fingerprint: str) -> bytes:
    """The bytes a seal signs: a fixed context string and the head it vouches for, as canonical JSON."""
    return SEAL_CONTEXT + json.dumps({"at": at, "ca_fingerprint": ca_fingerprint, "ca_id": ca_id, "count": count,
                                      "head": head}, sort_keys=True, separators=(",", ":")).encode()


class Sealer(Protocol):
    """A CA key at hand, as the ledger sees it: which CA, and a signature over bytes (``(algorithm, signature)``)."""

    @property
    def ca_id(self) -> int: ...

    @property
    def ca_fingerprint(self) -> str: ...

    def sign(self, payload: bytes) -> tuple[str, bytes]: ...


@dataclass(frozen=True)
class SealMade:
    """A seal this process just made (and so knows to be genuine): what it signed and the signature."""

    ca_id: int
    payload: bytes
    algorithm: str
    signature: bytes


@dataclass
class PendingEvent:
    at: str
    action: str
    details: dict[str, object]
    serial: str | None


@dataclass
class Pending:
    """What the open write transaction will add to the events log when it commits."""

    events: list[PendingEvent] = field(default_factory=list)


def install_tracking(conn: sqlite3.Connection) -> None:
    """The temporary table and triggers that note every state row a transaction touches (once per connection)."""
    statements = [f"CREATE TEMP TABLE IF NOT EXISTS privca_touched (tbl TEXT NOT NULL, id NOT NULL, "
                  "PRIMARY KEY (tbl, id)) WITHOUT ROWID"]
    for table, pk in rows.TRACKED.items():
        for op, refs in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            body = " ".join(f"INSERT OR IGNORE INTO privca_touched VALUES ('{table}', {ref}.{pk});" for ref in refs)
            statements.append(f"CREATE TEMP TRIGGER IF NOT EXISTS privca_{table}_{op.lower()} AFTER {op} ON "
                              f"main.{table} BEGIN {body} END")
    for statement in statements:
        conn.execute(statement)


def forget_touched(conn: sqlite3.Connection) -> None:
    """Start a transaction with nothing noted (a change made on this connection outside ``write()`` is not
    privca's and must not be vouched for)."""
    conn.execute(f"DELETE FROM {_TOUCHED}")


def _touched_digests(conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, str]]:
    """The digest of every row noted in this transaction (``rows.DELETED`` for one that is gone), and the serial
    of each certificate row among them."""
    noted: dict[str, list[object]] = {}
    for table, row_id in conn.execute(f"SELECT tbl, id FROM {_TOUCHED}"):
        noted.setdefault(table, []).append(row_id)
    found: dict[str, str] = {}
    serials: dict[str, str] = {}
    for table, ids in noted.items():
        pk = rows.TRACKED[table]
        cursor = conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT * FROM main.{table} WHERE {pk} IN (SELECT id FROM {_TOUCHED} WHERE tbl = ?)",
                       (table,))
        names = [column[0] for column in cursor.description]
        pk_index, serial_index = names.index(pk), names.index("serial") if table == "certificates" else -1
        present: dict[object, str] = {}
        for values in cursor:
            present[values[pk_index]] = rows.digest(names, values)
            if serial_index >= 0:
                serials[rows.key(table, values[pk_index])] = str(values[serial_index])
        for row_id in ids:
            found[rows.key(table, row_id)] = present.get(row_id, rows.DELETED)
    conn.execute(f"DELETE FROM {_TOUCHED}")
    return found, serials


def flush(conn: sqlite3.Connection, pending: Pending, sealer: Sealer | None, who: str) -> SealMade | None:
    """Inside the transaction, just before its commit: give the events their rows' digests, chain and insert
    them, and seal the new head when a CA key is at hand (returning the seal made)."""
    digests, serials = _touched_digests(conn)
    queued = pending.events
    pending.events = []
    if not queued:
        if digests:
            raise LedgerError("the ledger was about to change without an event recording it; nothing was changed")
        return None
    by_serial = {item.serial: index for index, item in enumerate(queued) if item.serial}
    for row_key in sorted(digests):
        serial = serials.get(row_key)
        index = by_serial.get(serial, len(queued) - 1) if serial is not None else len(queued) - 1
        recorded = queued[index].details.setdefault(ROWS, {})
        assert isinstance(recorded, dict)
        recorded[row_key] = digests[row_key]
    return append(conn, queued, sealer, who)


def append(conn: sqlite3.Connection, queued: list[PendingEvent], sealer: Sealer | None,
           who: str) -> SealMade | None:
    """Chain and insert ``queued`` after the newest event; with ``sealer``, sign the new head."""
    if sealer is not None:
        queued[-1].details[SEALED] = sealer.ca_id
    last = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash, next_id = (str(last[1]), int(last[0]) + 1) if last is not None else (GENESIS_HASH, 1)
    inserted = []
    for item in queued:
        text = json.dumps(item.details, sort_keys=True, separators=(",", ":"))
        digest = event_hash(prev_hash, next_id, item.at, item.action, who, item.serial, text)
        inserted.append((next_id, item.at, item.action, who, item.serial, text, prev_hash, digest))
        prev_hash, next_id = digest, next_id + 1
    conn.executemany(_INSERT_EVENT, inserted)
    if sealer is not None:
        count, at = next_id - 1, queued[-1].at
        payload = seal_payload(count, prev_hash, at, sealer.ca_id, sealer.ca_fingerprint)
        algorithm, signature = sealer.sign(payload)
        conn.execute(_INSERT_SEAL, (count, prev_hash, at, sealer.ca_id, sealer.ca_fingerprint, algorithm, signature))
        return SealMade(sealer.ca_id, payload, algorithm, signature)
    return None
