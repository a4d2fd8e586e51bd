"""The CA generations in the ledger: roots and issuing CAs, their status, and which of them peers must trust."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace
from datetime import datetime

from privca.errors import LedgerError
from privca.ledger.db import Ledger, inserted_id
from privca.ledger.records import CA, CAStatus, CARole, RevocationReason, iso, parse_time

# Columns written for a new CA, in the record's field order (enums and datetimes stored as text).
_NEW_COLUMNS = tuple(f.name for f in fields(CA) if f.name != "id")


def _stored(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    return value.value if isinstance(value, (CAStatus, CARole, RevocationReason)) else value


def all_cas(ledger: Ledger) -> list[CA]:
    """Every CA generation, in the order they were created."""
    return [CA.from_row(row) for row in ledger._conn.execute("SELECT * FROM cas ORDER BY id")]


def names(ledger: Ledger) -> dict[int, str]:
    """CA id -> name (``issuing-2``), for messages and ``to_json``."""
    return {int(row[0]): str(row[1]) for row in ledger._conn.execute("SELECT id, name FROM cas")}


def by_id(ledger: Ledger, ca_id: int) -> CA:
    row = ledger._conn.execute("SELECT * FROM cas WHERE id = ?", (ca_id,)).fetchone()
    if row is None:
        raise LedgerError(f"CA #{ca_id}: not in the ledger")
    return CA.from_row(row)


def by_serial(ledger: Ledger, serial: str) -> CA | None:
    row = ledger._conn.execute("SELECT * FROM cas WHERE serial = ?", (serial,)).fetchone()
    return None if row is None else CA.from_row(row)


def active(ledger: Ledger, role: CARole | str) -> CA | None:
    """The active CA of ``role`` (the newest, should there ever be two)."""
    row = ledger._conn.execute(
        "SELECT * FROM cas WHERE role = ? AND status = 'active' ORDER BY generation DESC LIMIT 1",
        (CARole(role).value,),
    ).fetchone()
    return None if row is None else CA.from_row(row)


def latest(ledger: Ledger, role: CARole | str) -> CA | None:
    """The newest generation of ``role``, whatever its status (a revoked issuing CA still names the next)."""
    row = ledger._conn.execute("SELECT * FROM cas WHERE role = ? ORDER BY generation DESC LIMIT 1",
                              (CARole(role).value,)).fetchone()
    return None if row is None else CA.from_row(row)


def exists(ledger: Ledger) -> bool:
    """Whether the ledger holds any CA (a store that ``privca init`` completed)."""
    return ledger._conn.execute("SELECT 1 FROM cas LIMIT 1").fetchone() is not None


def chain(ledger: Ledger, ca: CA) -> list[CA]:
    """``ca`` followed by each parent up to its root."""
    found = [ca]
    while found[-1].parent_id is not None:
        found.append(by_id(ledger, found[-1].parent_id))
    return found


def chain_pems(ledger: Ledger, ca: CA) -> list[str]:
    """The PEM of ``ca`` and each parent up to its root, in that order (``privca.rules.chain`` makes the files)."""
    return [link.pem for link in chain(ledger, ca)]


def insert(ledger: Ledger, ca: CA) -> CA:
    """Record a new CA; returns it with the id the ledger gave it (``ca.id`` 0), or kept (an id above 0, as when a
    store is rebuilt). Rare (init and rotations), so through sqlite-utils."""
    values = {name: _stored(getattr(ca, name)) for name in _NEW_COLUMNS}
    if ca.id > 0:
        values["id"] = ca.id
    table = ledger.tables().table("cas", pk="id")
    table.insert(values)
    return replace(ca, id=inserted_id(ledger, table.last_pk))


def retire(ledger: Ledger, ca_id: int, replaced_by: int, at: datetime) -> None:
    """Mark a CA generation retired: still trusted and still publishing its CRL, no longer issuing."""
    ledger._conn.execute("UPDATE cas SET status = 'retired', replaced_by = ?, retired_at = ? WHERE id = ?",
                        (replaced_by, iso(at), ca_id))


def revoke(ledger: Ledger, ca_id: int, reason: RevocationReason, at: datetime) -> None:
    ledger._conn.execute("UPDATE cas SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE id = ?",
                        (iso(at), reason.value, ca_id))


def count_crl_change(ledger: Ledger, ca_id: int) -> None:
    """Count a revocation change that the CA's current CRL does not show yet (``privca status`` reports it)."""
    ledger._conn.execute("UPDATE cas SET crl_changes = crl_changes + 1 WHERE id = ?", (ca_id,))


def set_crl_number(ledger: Ledger, ca_id: int, number: int) -> None:
    """The CA signed CRL ``number``, which shows every change so far."""
    ledger._conn.execute("UPDATE cas SET crl_number = ?, crl_changes = 0 WHERE id = ?", (number, ca_id))


def set_urls(ledger: Ledger, ca_id: int, crl_url: str | None, ocsp_url: str | None) -> None:
    ledger._conn.execute("UPDATE cas SET crl_url = ?, ocsp_url = ? WHERE id = ?", (crl_url, ocsp_url, ca_id))


def key_refs(ledger: Ledger) -> set[str]:
    """Every key a CA row names (a key file relative to the store, or a token URI)."""
    return {str(row[0]) for row in ledger._conn.execute("SELECT key_ref FROM cas")}


def names_key(ledger: Ledger, key_ref: str) -> bool:
    """Whether a CA row names this key."""
    return ledger._conn.execute("SELECT 1 FROM cas WHERE key_ref = ?", (key_ref,)).fetchone() is not None


def serials(ledger: Ledger) -> set[str]:
    return {str(row[0]) for row in ledger._conn.execute("SELECT serial FROM cas")}


def with_crl_url(ledger: Ledger) -> list[tuple[int, str]]:
    """``(id, CRL URL)`` of each CA that publishes its CRL at a URL."""
    return [(int(row[0]), str(row[1])) for row in ledger._conn.execute(
        "SELECT id, crl_url FROM cas WHERE crl_url IS NOT NULL ORDER BY id")]


def last_expiry_signed_by(ledger: Ledger, ca_id: int) -> datetime | None:
    """The latest notAfter among the leaf certificates and cross-certificates this CA signed (CA certificates
    it signed are left to the caller, whose rule for them depends on the child CA's own status)."""
    row = ledger._conn.execute(
        """SELECT max(t) FROM (
               SELECT max(not_after) AS t FROM certificates WHERE issuer_id = ?
               UNION ALL SELECT max(not_after) FROM cross_certificates WHERE issuer_ca_id = ?)""",
        (ca_id, ca_id),
    ).fetchone()
    return None if row[0] is None else parse_time(row[0])


def needed_until(ledger: Ledger) -> dict[int, datetime | None]:
    """For every CA: until when peers must trust it and it must publish its CRL (None: not needed at all).

    An active CA is needed until it expires. A retired CA is needed until the last certificate it signed expires:
    its leaves, the CA certificates under it (as long as those CAs are needed) and its cross-certificates. A
    revoked CA, or a retired one that signed nothing, is not needed at all.
    """
    every = all_cas(ledger)
    children: dict[int, list[CA]] = {}
    for ca in every:
        if ca.parent_id is not None:
            children.setdefault(ca.parent_id, []).append(ca)
    found: dict[int, datetime | None] = {}

    def until(ca: CA) -> datetime | None:
        if ca.id not in found:
            if ca.status is CAStatus.REVOKED:
                found[ca.id] = None
            elif ca.status is CAStatus.ACTIVE:
                found[ca.id] = ca.not_after
            else:
                signed = [last_expiry_signed_by(ledger, ca.id)] + [until(child) for child in children.get(ca.id, [])]
                latest_signed = max((moment for moment in signed if moment is not None), default=None)
                found[ca.id] = None if latest_signed is None else min(latest_signed, ca.not_after)
        return found[ca.id]

    for ca in every:
        until(ca)
    return found


def trusted(ledger: Ledger, now: datetime) -> list[CA]:
    """Every CA generation peers must still trust at ``now``: roots first, then issuing CAs, oldest first.

    Trust bundles carry all of them, so that certificates from a retired generation keep validating while the
    new one takes over; the same CAs keep publishing their CRLs.
    """
    until = needed_until(ledger)
    moment = parse_time(iso(now))  # to the second, as the ledger keeps times
    kept = [ca for ca in all_cas(ledger) if (end := until[ca.id]) is not None and end >= moment]
    return sorted(kept, key=lambda ca: (ca.role is not CARole.ROOT, ca.generation))


def by_ids(ledger: Ledger, ids: Iterable[int]) -> dict[int, CA]:
    wanted = set(ids)
    return {ca.id: ca for ca in all_cas(ledger) if ca.id in wanted}


def chains_to_other_roots(ledger: Ledger, ca: CA, now: datetime | None) -> dict[str, str]:
    """For a CA: the chain that takes a certificate it signed to another root generation alone, for each root that
    cross-signed ``ca``'s root (cross-certificate valid at ``now``, when given), keyed by that root's name
    (``root-1``). Each chain is PEM: the CAs below the self-signed root, then the cross-certificate.

    During a root rollover this is what a peer that trusts only the other root must be sent: with the self-signed
    root of this generation in the chain, OpenSSL stops at it ("self-signed certificate in certificate chain")
    instead of following the cross-certificate.
    """
    from privca.ledger.crosses import all_crosses

    path = chain(ledger, ca)
    found: dict[str, str] = {}
    for cross in all_crosses(ledger, now):
        if cross.subject_ca_id != path[-1].id:
            continue
        other = by_id(ledger, cross.issuer_ca_id)
        if other.status is not CAStatus.REVOKED:
            found[other.name] = "".join(item.pem for item in path[:-1]) + cross.pem
    return found
