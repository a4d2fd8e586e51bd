"""The read side of the ledger's proof: every state row as it is now, for ``privca verify`` to compare with the
digests the events recorded (``privca.ledger.rows``)."""

from __future__ import annotations

from collections.abc import Iterator

from privca.ledger import rows
from privca.ledger.db import Ledger


def tracked_rows(ledger: Ledger) -> Iterator[tuple[str, list[str], tuple[object, ...]]]:
    """``(row key, column names, values)`` of every row of every tracked table, read as they are walked."""
    for table, pk in rows.TRACKED.items():
        cursor = ledger.conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")
        names = [column[0] for column in cursor.description]
        index = names.index(pk)
        for values in cursor:
            yield rows.key(table, values[index]), names, tuple(values)


_KINDS = {"cas": "CA", "certificates": "certificate", "crls": "the CRL of CA", "cross_certificates": "cross-certificate",
          "enroll_challenges": "enrollment challenge", "enroll_requests": "enrollment request"}


def describe(ledger: Ledger, row_key: str, serial: str | None = None) -> str:
    """How messages name a row (``certificate 3F:2A:...``, ``CA issuing-1``, ``the CRL of CA root-1``): from the
    row itself, else ``serial`` (what an event said of a row that is gone), else its id. Only for findings."""
    from privca.common.serials import serial_text

    table, row_id = rows.split_key(row_key)
    kind = _KINDS.get(table, table)
    if table in ("cas", "crls"):
        found = ledger.conn.execute("SELECT name FROM cas WHERE id = ?", (row_id,)).fetchone()
        if found is not None:
            return f"{kind} {found[0]}"
    if table == "certificates":
        found = ledger.conn.execute("SELECT serial FROM certificates WHERE id = ?", (row_id,)).fetchone()
        if found is not None or serial:
            return f"{kind} {serial_text(str(found[0] if found is not None else serial))}"
    return f"{kind} #{row_id}"
