"""The events log: append-only and hash-chained, so editing or deleting an earlier event breaks every later hash.

Every change to the ledger is recorded with an event in the same transaction (call these inside
``Ledger.write()``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from privca.errors import ClockError, LedgerError
from privca.ledger.chain import GENESIS_HASH, PendingEvent, event_hash
from privca.ledger.db import Ledger
from privca.ledger.records import Event, iso

#: The event actions that put a certificate on record (``privca verify`` checks every certificate has one).
ISSUING_ACTIONS = ("issue", "renew")

#: What an event's details may hold: the plain values json writes.
Details = Mapping[str, object]


#: How far behind the ledger's newest event the clock may be before privca refuses to write: commands take their
#: ``now`` when they start and may wait for a passphrase while another process records later events.
CLOCK_TOLERANCE = timedelta(minutes=15)
#: Set to the newest event's time (as the error shows it) to accept, for one command, that the event came from a
#: clock that ran ahead; the next event then carries the right time and the check holds again.
CLOCK_OVERRIDE_ENV = "PRIVCA_ACCEPT_EVENT_FROM_FUTURE"


def clock_problem(now: datetime, newest_event_at: str | None) -> str | None:
    """Why ``now`` cannot be the time of a new event: clearly before the newest one on record."""
    if newest_event_at is None:
        return None
    if iso(now + CLOCK_TOLERANCE) >= newest_event_at or os.environ.get(CLOCK_OVERRIDE_ENV) == newest_event_at:
        return None
    return (f"clock: this machine says {iso(now)}, but the ledger's newest event is from {newest_event_at}; fix the "
            "clock (NTP) and run again. If the clock is right and that event came from a clock that ran ahead, run "
            f"the command once with {CLOCK_OVERRIDE_ENV}={newest_event_at}")


def newest_at(ledger: Ledger) -> str | None:
    """When the newest event was recorded, or None for an empty log."""
    row = ledger._conn.execute("SELECT at FROM events ORDER BY id DESC LIMIT 1").fetchone()
    return str(row["at"]) if row is not None else None


def expected_hash(event: Event) -> str:
    """The hash ``event`` must carry, from its own fields and the previous event's hash."""
    return event_hash(event.prev_hash, event.id, event.stored_at, event.action, event.actor, event.serial,
                      event.details_text)


def _head(ledger: Ledger, at: datetime | None = None) -> tuple[str, int]:
    """The last event's hash and the next event's id; with ``at``, ClockError when it is clearly before the last
    event's time (every write records an event, so this one check keeps a clock that went back from writing
    history out of order: certificates dated before earlier ones, revocations before issuance)."""
    last = ledger._conn.execute("SELECT id, hash, at FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if at is not None and last is not None and (problem := clock_problem(at, last["at"])) is not None:
        raise ClockError(problem)
    return (last["hash"], last["id"] + 1) if last else (GENESIS_HASH, 1)


def head_hash(ledger: Ledger) -> str:
    """The hash of the newest event (the genesis hash when there is none): it vouches for the whole log."""
    return _head(ledger)[0]


def record(ledger: Ledger, at: datetime, action: str, details: Details, serial: str | None = None) -> None:
    """Append an event; call inside ``write()`` so the event commits with the change it describes."""
    record_many(ledger, at, action, [(details, serial)])


def record_many(ledger: Ledger, at: datetime, action: str, items: Sequence[tuple[Details, str | None]]) -> None:
    """Append many events of one kind at once (a batch issue). They are chained and inserted with one statement
    when the transaction commits, carrying the digests of the rows it changed (``privca.ledger.chain``)."""
    if not ledger._conn.in_transaction:
        raise LedgerError("an event can only be recorded inside Ledger.write()")
    _head(ledger, at)  # the clock check
    when = iso(at)
    ledger.pending.events += [PendingEvent(when, action, dict(details), serial) for details, serial in items]


def every(ledger: Ledger) -> Iterator[Event]:
    """All events, oldest first (read as they are walked: the log can be long)."""
    for row in ledger._conn.execute("SELECT * FROM events ORDER BY id"):
        yield Event.from_row(row)


def all_events(ledger: Ledger) -> list[Event]:
    return list(every(ledger))


def mentioning(ledger: Ledger, text: str) -> Iterator[Event]:
    """Events whose details contain ``text`` (a key name, say), oldest first: a scan, for ``privca verify``."""
    for row in ledger._conn.execute("SELECT * FROM events WHERE instr(details, ?) > 0 ORDER BY id", (text,)):
        yield Event.from_row(row)


def count(ledger: Ledger) -> int:
    return int(ledger._conn.execute("SELECT count(*) FROM events").fetchone()[0])


def last_id(ledger: Ledger) -> int:
    """The newest event's id (0 for an empty log)."""
    return int(ledger._conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def hashes_at(ledger: Ledger, ids: set[int]) -> dict[int, str]:
    """The hash of each event in ``ids`` that is in the log."""
    found: dict[int, str] = {}
    for event_id in sorted(ids):
        row = ledger._conn.execute("SELECT hash FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is not None:
            found[event_id] = str(row[0])
    return found


def after(ledger: Ledger, event_id: int) -> Iterator[Event]:
    """The events recorded after event #``event_id``, oldest first."""
    for row in ledger._conn.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (event_id,)):
        yield Event.from_row(row)
