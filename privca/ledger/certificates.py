"""The certificates privca issued: recording them, finding them, listing them and their revocation status.

The queries here are privca's hot paths (a batch of 1,000 certificates, ``list --expiring-within`` on a ledger of
a million, a CRL of 100,000 entries), so they are plain SQL on indexes made for them: sqlite-utils would add
~100 ms of import to every command for no gain (see docs/performance.md).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from privca.common.serials import serial_text
from privca.errors import LedgerError
from privca.ledger.db import Ledger
from privca.rules.validity import status_at
from privca.ledger.records import (CertificateStatus, IssuedCertificate, IssuerSummary, ListedCertificate,
                                   RevocationReason, iso, parse_time)

#: The statuses ``privca list --status`` filters on: ``valid`` (unrevoked, unexpired), ``expired``, ``revoked``,
#: ``hold``.
LIST_STATUSES = ("valid", "expired", "revoked", "hold")

_INSERT_COLUMNS = ("serial", "issuer_id", "profile", "subject", "sans", "eku", "key_type", "key_size", "not_before",
                   "not_after", "status", "revoked_at", "revocation_reason", "fingerprint_sha256", "csr_sha256",
                   "csr_der", "requested_eku", "replaces", "issued_by", "issued_at", "cert_path", "chain_path",
                   "fullchain_path", "pem", "channel")
#: What ``listing`` reads: all in the ``certificates_listing`` index.
LISTING_COLUMNS = ("serial", "status", "profile", "subject", "not_after")
_FILE_COLUMNS = {"cert": "cert_path", "chain": "chain_path", "fullchain": "fullchain_path"}


def _row(cert: IssuedCertificate) -> tuple[object, ...]:
    return (cert.serial, cert.issuer_id, cert.profile, cert.subject, json.dumps(list(cert.sans)),
            json.dumps(list(cert.eku)), cert.key_type, cert.key_size, iso(cert.not_before), iso(cert.not_after),
            cert.status.value, None if cert.revoked_at is None else iso(cert.revoked_at),
            None if cert.revocation_reason is None else cert.revocation_reason.value, cert.fingerprint_sha256,
            cert.csr_sha256, cert.csr_der, json.dumps(list(cert.requested_eku)),
            cert.replaces, cert.issued_by, iso(cert.issued_at), cert.cert_path, cert.chain_path, cert.fullchain_path,
            cert.pem, cert.channel)


def insert_many(ledger: Ledger, certs: Sequence[IssuedCertificate]) -> None:
    """Record new certificates (their ``id`` is ignored) with one statement: a batch of 1,000 in one insert."""
    if not certs:
        return
    sql = f"INSERT INTO certificates ({', '.join(_INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})"
    try:
        ledger._conn.executemany(sql, [_row(cert) for cert in certs])
    except sqlite3.IntegrityError as exc:
        raise LedgerError(f"{ledger.path}: cannot record the certificates ({exc})") from None


def resolve_serial(ledger: Ledger, text: str) -> str:
    """The ledger serial of a certificate or CA from a serial as people type it: whole (as OpenSSL shows it, with
    its leading zero, or without), or a prefix of at least MIN_PREFIX_DIGITS hex digits that only one serial
    starts with. UsageError when the text is not hex or is the prefix of several serials (they are listed); a
    serial nothing matches is returned as typed, for the caller to report as unknown."""
    from privca.common.serials import MIN_PREFIX_DIGITS, ledger_serial, matches_prefix, serial_text, typed_digits

    digits = typed_digits(text)
    whole = ledger_serial(digits)
    exact = ledger._conn.execute("SELECT 1 FROM certificates WHERE serial = ? UNION ALL "
                                "SELECT 1 FROM cas WHERE serial = ? LIMIT 1", (whole, whole)).fetchone()
    if exact is not None or len(digits) < MIN_PREFIX_DIGITS:
        return whole
    # GLOB uses the serial index (hex digits hold no GLOB wildcards). The leading zero OpenSSL shows is not in
    # the ledger's form, so the search is widened by it and narrowed on the form shown.
    pattern = whole + "*"
    rows = ledger._conn.execute(
        "SELECT serial, subject, 'certificate' AS kind FROM certificates WHERE serial GLOB ? UNION ALL "
        "SELECT serial, subject, role || ' CA ' || name AS kind FROM cas WHERE serial GLOB ? ORDER BY serial",
        (pattern, pattern)).fetchall()
    found = [row for row in rows if matches_prefix(row[0], digits)]
    if len(found) > 1:
        from privca.errors import UsageError

        shown = "; ".join(f"{serial_text(row[0])} ({row[2]} {row[1]})" for row in found[:10])
        more = f"; and {len(found) - 10} more" if len(found) > 10 else ""
        raise UsageError(f"serial {digits}: {len(found)} serials start with it: {shown}{more}; give more digits")
    return str(found[0][0]) if found else whole


def all_by_serial(ledger: Ledger, serial: str) -> list[IssuedCertificate]:
    return [IssuedCertificate.from_row(row)
            for row in ledger._conn.execute("SELECT * FROM certificates WHERE serial = ?", (serial,))]


def by_serial(ledger: Ledger, serial: str) -> IssuedCertificate:
    """The one certificate with this (normalised) serial; LedgerError when there is none, or several.

    Serials are random and 159 bits long, so two CAs issuing the same one does not happen by chance; if it
    ever does, privca refuses to guess which one a command means.
    """
    found = all_by_serial(ledger, serial)
    if not found:
        raise LedgerError(f"serial {serial_text(serial)}: no such certificate in the ledger; see: privca list")
    if len(found) > 1:
        raise LedgerError(f"serial {serial_text(serial)}: {len(found)} certificates from different CAs share it; the ledger "
                          "was changed outside privca (privca verify)")
    return found[0]


def by_id(ledger: Ledger, cert_id: int) -> IssuedCertificate | None:
    row = ledger._conn.execute("SELECT * FROM certificates WHERE id = ?", (cert_id,)).fetchone()
    return None if row is None else IssuedCertificate.from_row(row)


def issued_by(ledger: Ledger, issuer_id: int, serial: str) -> IssuedCertificate | None:
    """The certificate ``issuer_id`` issued with ``serial``; None when it is not on record."""
    row = ledger._conn.execute("SELECT * FROM certificates WHERE issuer_id = ? AND serial = ?",
                              (issuer_id, serial)).fetchone()
    return None if row is None else IssuedCertificate.from_row(row)


def file_rewritten_later(ledger: Ledger, cert_id: int, role: str, path: str) -> bool:
    """Whether a certificate recorded after ``cert_id`` had its ``role`` file (cert, chain, fullchain) at ``path``.

    Only rows after this one (a rowid range, not a scan of the whole ledger) can have replaced the file.
    """
    column = _FILE_COLUMNS[role]
    return ledger._conn.execute(f"SELECT 1 FROM certificates WHERE id > ? AND {column} = ? LIMIT 1",
                               (cert_id, path)).fetchone() is not None


def successors(ledger: Ledger, serial: str) -> list[IssuedCertificate]:
    """Certificates recorded as renewals of ``serial`` (their ``replaces``), newest first."""
    return [IssuedCertificate.from_row(row) for row in
            ledger._conn.execute("SELECT * FROM certificates WHERE replaces = ? ORDER BY id DESC", (serial,))]


def every(ledger: Ledger) -> Iterator[IssuedCertificate]:
    """Every certificate, in the order they were recorded (read as they are walked)."""
    for row in ledger._conn.execute("SELECT * FROM certificates ORDER BY id"):
        yield IssuedCertificate.from_row(row)


def count(ledger: Ledger) -> int:
    return int(ledger._conn.execute("SELECT count(*) FROM certificates").fetchone()[0])


def serials(ledger: Ledger) -> set[str]:
    return {str(row[0]) for row in ledger._conn.execute("SELECT serial FROM certificates")}


def set_revoked(ledger: Ledger, cert_id: int, status: CertificateStatus, at: datetime,
                reason: RevocationReason) -> None:
    """Record a revocation or hold (``status``), from ``at``."""
    ledger._conn.execute("UPDATE certificates SET status = ?, revoked_at = ?, revocation_reason = ? WHERE id = ?",
                        (status.value, iso(at), reason.value, cert_id))


def set_valid(ledger: Ledger, cert_id: int) -> None:
    """Take a certificate off hold."""
    ledger._conn.execute(
        "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL WHERE id = ?",
        (cert_id,))


def revoked_entries(ledger: Ledger, ca_id: int, *, since: datetime | None) -> list[tuple[str, str, str | None]]:
    """``(serial, revoked_at, revocation_reason)`` as stored, of everything revoked or held under a CA: the
    entries of its CRL (the leaves it issued and the CAs it signed).

    A certificate that expired before ``since`` is left out (the CRL's retention cutoff; see
    ``privca.revocation.revoke.retention_cutoff``). Plain tuples, not records: a third faster than rows over 100,000 entries, and the covering index
    ``certificates_revoked`` answers it without reading a certificate.
    """
    cutoff = "" if since is None else iso(since)
    cursor = ledger._conn.cursor()
    cursor.row_factory = None
    rows: list[tuple[str, str, str | None]] = cursor.execute(
        "SELECT serial, revoked_at, revocation_reason FROM certificates"
        " WHERE status IN ('revoked', 'hold') AND issuer_id = ? AND not_after >= ?"
        " UNION ALL SELECT serial, revoked_at, revocation_reason FROM cas"
        " WHERE status = 'revoked' AND parent_id = ? AND not_after >= ?",
        (ca_id, cutoff, ca_id, cutoff),
    ).fetchall()
    return rows


def status_under(ledger: Ledger, ca_id: int, serial: str) -> tuple[bool, datetime | None,
                                                                      RevocationReason | None] | None:
    """Whether the certificate or intermediate CA that ``ca_id`` signed with ``serial`` is revoked (or held), since
    when and why, as an OCSP answer needs it; None when ``ca_id`` signed no such serial."""
    row = ledger._conn.execute(
        "SELECT status, revoked_at, revocation_reason FROM certificates WHERE issuer_id = ? AND serial = ?"
        " UNION ALL SELECT status, revoked_at, revocation_reason FROM cas WHERE parent_id = ? AND serial = ?",
        (ca_id, serial, ca_id, serial),
    ).fetchone()
    if row is None:
        return None
    if row["status"] not in ("revoked", "hold"):
        return False, None, None
    reason = row["revocation_reason"]
    return True, parse_time(row["revoked_at"]), None if reason is None else RevocationReason(reason)


def issuer_summary(ledger: Ledger, now: datetime) -> dict[int, IssuerSummary]:
    """Per issuing CA: when it first issued, its next valid certificate to expire, and how many are valid."""
    stamp = iso(now)
    rows = ledger._conn.execute(
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
    return {int(row["issuer_id"]): IssuerSummary(
        int(row["issuer_id"]), None if row["first_issued"] is None else parse_time(row["first_issued"]),
        None if row["next_expiry"] is None else parse_time(row["next_expiry"]), int(row["valid"] or 0))
        for row in rows}


def profiles_in_use(ledger: Ledger, now: datetime) -> list[str]:
    """Profiles of the valid, unexpired certificates."""
    rows = ledger._conn.execute(
        "SELECT DISTINCT profile FROM certificates WHERE status = 'valid' AND not_after >= ? ORDER BY profile",
        (iso(now),),
    )
    return [str(row[0]) for row in rows]


def _where(now: datetime, statuses: Sequence[str], expiring_within_days: int | None,
           profile: str | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
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
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def query(ledger: Ledger, *, now: datetime, statuses: Sequence[str] = (), expiring_within_days: int | None = None,
          profile: str | None = None, limit: int | None = None) -> Iterator[IssuedCertificate]:
    """Certificates matching every filter given, soonest expiry first.

    ``statuses`` may hold ``valid`` (unrevoked and not expired), ``expired``, ``revoked`` and ``hold``.
    """
    where, params = _where(now, statuses, expiring_within_days, profile)
    sql = f"SELECT * FROM certificates{where} ORDER BY not_after, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    for row in ledger._conn.execute(sql, params):
        yield IssuedCertificate.from_row(row)


def listing(ledger: Ledger, *, now: datetime, statuses: Sequence[str] = (), expiring_within_days: int | None = None,
            profile: str | None = None) -> Iterator[ListedCertificate]:
    """What ``query`` finds, reduced to the table ``privca list`` prints: read from the ledger's listing index
    alone (55 ms instead of 190 ms for 40,000 of 1,000,000 certificates)."""
    where, params = _where(now, statuses, expiring_within_days, profile)
    cursor = ledger._conn.cursor()
    cursor.row_factory = None
    sql = f"SELECT {', '.join(LISTING_COLUMNS)} FROM certificates{where} ORDER BY not_after, id"
    # Per row only what must be done: a dict lookup for the enum, and the status seen at ``now`` by comparing ISO
    # text, as the query itself does (``status_at``, the rules' "expired"). 40,000 rows of 1,000,000 in ~60 ms.
    statuses_by_value = {status.value: status for status in CertificateStatus}
    stamp = iso(now)
    for serial, status, profile_name, subject, not_after in cursor.execute(sql, params):
        yield ListedCertificate(serial, statuses_by_value[status], status_at(status, not_after, stamp), profile_name,
                                subject, parse_time(not_after), not_after)


def expiring(ledger: Ledger, *, now: datetime, until: datetime) -> Iterator[IssuedCertificate]:
    """Valid certificates whose notAfter is between ``now`` and ``until``, soonest first."""
    for row in ledger._conn.execute(
            "SELECT * FROM certificates WHERE status = 'valid' AND not_after >= ? AND not_after <= ?"
            " ORDER BY not_after, id", (iso(now), iso(until))):
        yield IssuedCertificate.from_row(row)


def output_folders(ledger: Ledger) -> set[Path]:
    """Every folder privca has written certificate files to."""
    query = "SELECT DISTINCT cert_path FROM certificates UNION SELECT DISTINCT fullchain_path FROM certificates"
    return {Path(path).parent for (path,) in ledger._conn.execute(query) if path}


def newest_per_file(ledger: Ledger, role: str) -> Iterator[IssuedCertificate]:
    """For each path a ``role`` file (cert, chain, fullchain) was written to, the newest certificate written
    there: the one whose content the file must hold."""
    column = _FILE_COLUMNS[role]
    for row in ledger._conn.execute(
            f"SELECT c.* FROM certificates c JOIN (SELECT max(id) AS id FROM certificates GROUP BY {column}) "
            "USING (id) ORDER BY c.id"):
        yield IssuedCertificate.from_row(row)


def recorded_status(ledger: Ledger, serial: str, fingerprint_sha256: str) -> tuple[str, str | None, str | None] | None:
    """(status, revoked_at, revocation_reason) of the certificate or CA with this serial and fingerprint, if privca
    issued it; what ``audit`` and ``check`` report before any CRL is published."""
    row = ledger._conn.execute(
        "SELECT status, revoked_at, revocation_reason FROM certificates WHERE serial = ? AND fingerprint_sha256 = ?"
        " UNION ALL SELECT status, revoked_at, revocation_reason FROM cas WHERE serial = ? AND fingerprint_sha256 = ?"
        " LIMIT 1", (serial, fingerprint_sha256, serial, fingerprint_sha256)).fetchone()
    return (str(row[0]), row[1], row[2]) if row is not None else None
