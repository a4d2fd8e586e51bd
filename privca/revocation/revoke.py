"""Revocation: revoke or hold certificates, and sign each CA's CRL from the ledger.

One CRL per CA (RFC 5280 section 5): an issuing CA's CRL lists the leaves it issued, the root's CRL lists the
intermediates it signed. The ledger is the source of truth: ``revoke`` records a revocation in one transaction
with its event, ``issue_crls`` signs new CRLs from the ledger and keeps the latest of each CA in the ledger
(``crls`` table), where ``privca publish`` and ``privca serve`` find them.

Cisco Expressway treats every certificate of a CA as revoked once that CA's CRL has expired ("Managing
certificate revocation lists", Expressway Certificate Creation and Use Guide), so ``crl_status`` says when a
CRL is due for renewal well before it expires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privca.authority.ca import Issuer, crl_file_name, load_issuer, parse_serial
from privca.errors import OutputError, RevocationError, StoreError, UsageError
from privca.common.fsutil import atomic_write, check_writable_target
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger.db import Ledger, iso

if TYPE_CHECKING:
    import sqlite3

    from cryptography import x509

    from privca.ledger.store import Store

# RFC 5280 section 5.3.1 CRLReason names (as people write them) -> cryptography's ReasonFlags attribute.
# removeFromCRL is only for delta CRLs and aACompromise only for attribute certificates: privca uses neither.
REASONS: dict[str, str] = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "caCompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "certificateHold": "certificate_hold",
    "privilegeWithdrawn": "privilege_withdrawn",
}
HOLD = "certificateHold"

DEFAULT_CRL_DAYS = 7  # Expressway downloads CRLs daily: a daily renewal leaves six days to notice a failure
MAX_CRL_DAYS = 365
DUE_FRACTION = 1 / 3  # a CRL is due for renewal when less than a third of its lifetime is left

# A CRL's thisUpdate is set a little in the past, like a certificate's notBefore, so that a peer whose clock is
# a few minutes behind does not reject a CRL fetched right after it was published as "not yet valid".
CRL_BACKDATE = timedelta(minutes=5)


def parse_reason(text: str) -> str:
    """The RFC 5280 reason name for ``text`` (any letter case); UsageError naming the choices otherwise."""
    by_folded = {name.casefold(): name for name in REASONS}
    try:
        return by_folded[text.strip().casefold()]
    except KeyError:
        raise UsageError(f"--reason {text!r}: not a revocation reason; choose one of {', '.join(REASONS)}") from None


def reason_flag(reason: str | None) -> "x509.ReasonFlags | None":
    """The cryptography flag for a stored reason; None for unspecified, which is left out (RFC 5280 5.3.1)."""
    from cryptography import x509

    if reason is None or reason == "unspecified":
        return None
    return getattr(x509.ReasonFlags, REASONS[reason])


# --- revoking ---------------------------------------------------------------------------------------------------


def _ca_by_serial(ledger: Ledger, serial: str) -> "sqlite3.Row | None":
    return ledger.conn.execute("SELECT * FROM cas WHERE serial = ?", (serial,)).fetchone()


def _mark_crl_change(ledger: Ledger, ca_id: int) -> None:
    """Count a revocation change that the CA's current CRL does not show yet (``privca status`` reports it)."""
    ledger.conn.execute("UPDATE cas SET crl_changes = crl_changes + 1 WHERE id = ?", (ca_id,))


def mark_revoked(ledger: Ledger, row: "sqlite3.Row", reason: str, now: datetime,
                 details: dict[str, Any] | None = None) -> tuple[str, str]:
    """The ledger change of revoking (or holding) one certificate row, with its event; call inside ``write()``.

    Shared by ``revoke`` and by renewal's ``--revoke-old`` (reason superseded), so both count towards the next
    CRL the same way. Returns the new status and the revocation time.
    """
    # A held certificate keeps the date it stopped being trusted when it is revoked for good.
    revoked_at = row["revoked_at"] if row["status"] == "hold" else iso(now)
    status = "hold" if reason == HOLD else "revoked"
    ledger.conn.execute(
        "UPDATE certificates SET status = ?, revoked_at = ?, revocation_reason = ? WHERE id = ?",
        (status, revoked_at, reason, row["id"]),
    )
    _mark_crl_change(ledger, row["issuer_id"])
    issuer = ledger.ca(row["issuer_id"])
    ledger.record_event(now, "hold" if status == "hold" else "revoke",
                        {"reason": reason, "subject": row["subject"], "issuer": issuer["name"],
                         "previous_status": row["status"], **(details or {})}, serial=row["serial"])
    return status, revoked_at


def revoke(store: "Store", serial: str, reason: str, *, now: datetime, ca: bool = False) -> dict[str, Any]:
    """Revoke a certificate (or, with ``ca=True``, an intermediate CA) and record it with its event.

    ``certificateHold`` suspends a certificate until ``release``; any other reason is final. A held certificate
    can be revoked for good later and keeps the date it was first held. Nothing changes when an error is raised.

    Raises:
        RevocationError: unknown serial, already revoked, a CA serial without ``ca=True`` (or a leaf with it),
            or the root CA.
    """
    wanted, reason = parse_serial(serial), parse_reason(reason)
    ledger = store.require_ca()
    with ledger.write():
        if ca:
            return _revoke_ca(ledger, wanted, reason, now)
        rows = ledger.certificates_by_serial(wanted)
        if not rows:
            ca_row = _ca_by_serial(ledger, wanted)
            if ca_row is not None:
                raise RevocationError(
                    f"serial {wanted}: is the {ca_row['role']} CA {ca_row['name']}, not a certificate; to revoke a "
                    "CA add --ca (privca never revokes a CA by accident)"
                )
            raise RevocationError(f"serial {wanted}: no such certificate in the ledger; see: privca list")
        if len(rows) > 1:
            raise RevocationError(f"serial {wanted}: issued by {len(rows)} different CAs; the ledger is inconsistent")
        row = rows[0]
        if row["status"] == "revoked":
            raise RevocationError(
                f"serial {wanted}: already revoked on {row['revoked_at']} ({row['revocation_reason']}); nothing to do"
            )
        if row["status"] == "hold" and reason == HOLD:
            raise RevocationError(
                f"serial {wanted}: already on hold since {row['revoked_at']}; release it with: privca unhold {wanted}"
            )
        status, revoked_at = mark_revoked(ledger, row, reason, now)
        issuer = ledger.ca(row["issuer_id"])
    return {"serial": wanted, "kind": "certificate", "subject": row["subject"], "status": status,
            "revoked_at": revoked_at, "revocation_reason": reason, "crl_of": issuer["name"]}


def _revoke_ca(ledger: Ledger, serial: str, reason: str, now: datetime) -> dict[str, Any]:
    row = _ca_by_serial(ledger, serial)
    if row is None:
        if ledger.certificates_by_serial(serial):
            raise RevocationError(f"serial {serial}: is a certificate, not a CA; drop --ca to revoke it")
        raise RevocationError(f"serial {serial}: no such CA in the ledger; see: privca status")
    if row["parent_id"] is None:
        raise RevocationError(
            f"serial {serial}: is the root CA {row['name']}; a root cannot be revoked on its own CRL; remove it "
            "from every trust store instead"
        )
    if reason == HOLD:
        raise RevocationError(f"--reason {HOLD}: privca puts only certificates on hold, not CAs; choose a final reason")
    if row["status"] == "revoked":
        raise RevocationError(
            f"serial {serial}: CA {row['name']} already revoked on {row['revoked_at']} ({row['revocation_reason']})"
        )
    ledger.conn.execute("UPDATE cas SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE id = ?",
                        (iso(now), reason, row["id"]))
    _mark_crl_change(ledger, row["parent_id"])
    parent = ledger.ca(row["parent_id"])
    ledger.record_event(now, "revoke-ca", {"reason": reason, "ca": row["name"], "subject": row["subject"],
                                           "issuer": parent["name"]}, serial=serial)
    return {"serial": serial, "kind": "ca", "subject": row["subject"], "status": "revoked", "revoked_at": iso(now),
            "revocation_reason": reason, "crl_of": parent["name"]}


def release(store: "Store", serial: str, *, now: datetime) -> dict[str, Any]:
    """Take a certificate off hold: it is valid again and drops off its CA's next CRL (RFC 5280 5.3.1)."""
    wanted = parse_serial(serial)
    ledger = store.require_ca()
    with ledger.write():
        row = ledger.certificate(wanted)
        if row["status"] != "hold":
            raise RevocationError(
                f"serial {wanted}: is {row['status']}, not on hold; only a {HOLD} revocation can be released"
            )
        ledger.conn.execute(
            "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL WHERE id = ?",
            (row["id"],),
        )
        _mark_crl_change(ledger, row["issuer_id"])
        issuer = ledger.ca(row["issuer_id"])
        ledger.record_event(now, "release", {"subject": row["subject"], "issuer": issuer["name"],
                                             "held_since": row["revoked_at"]}, serial=wanted)
    return {"serial": wanted, "kind": "certificate", "subject": row["subject"], "status": "valid",
            "revoked_at": None, "revocation_reason": None, "crl_of": issuer["name"]}


# --- CRLs -------------------------------------------------------------------------------------------------------


def crl_issuers(ledger: Ledger, now: datetime) -> list["sqlite3.Row"]:
    """The CAs that must publish a CRL: the same generations peers must still trust (``trusted_ca_rows``), so a
    retired CA keeps its CRL fresh while a certificate it signed is in service, and stops after that."""
    from privca.authority.rotation import trusted_ca_rows

    return sorted(trusted_ca_rows(ledger, now), key=lambda row: int(row["id"]))


def revoked_entries(ledger: Ledger, ca_id: int, *, since: str | None) -> list[tuple[str, str, str | None]]:
    """``(serial, revoked_at, revocation_reason)`` of everything revoked or held under a CA.

    A certificate that expired before ``since`` (the previous CRL's thisUpdate) is left out: it has already been
    listed on a CRL issued after it expired, as RFC 5280 section 3.3 asks before an entry may be removed.
    """
    cutoff = since or ""
    cursor = ledger.conn.cursor()
    cursor.row_factory = None  # plain tuples: a third faster than sqlite3.Row over 100,000 rows
    return cursor.execute(
        "SELECT serial, revoked_at, revocation_reason FROM certificates"
        " WHERE status IN ('revoked', 'hold') AND issuer_id = ? AND not_after >= ?"
        " UNION ALL SELECT serial, revoked_at, revocation_reason FROM cas"
        " WHERE status = 'revoked' AND parent_id = ? AND not_after >= ?",
        (ca_id, cutoff, ca_id, cutoff),
    ).fetchall()


def _entry_extensions() -> dict[str | None, list[Any]]:
    """The reasonCode entry extension for each reason, made once and shared by every entry."""
    from cryptography import x509
    from cryptography.x509.oid import CRLEntryExtensionOID

    extensions: dict[str | None, list[Any]] = {None: []}
    for name in REASONS:
        flag = reason_flag(name)
        extensions[name] = [] if flag is None else [
            x509.Extension(CRLEntryExtensionOID.CRL_REASON, False, x509.CRLReason(flag))
        ]
    return extensions


def build_crl(
    issuer: Issuer, rows: Iterable[Sequence[Any]], *, now: datetime, days: int, crl_number: int
) -> "x509.CertificateRevocationList":
    """Sign a CRL listing ``rows`` of ``(serial hex, revoked_at ISO, reason)``.

    The entries are built into one list and handed to the builder at once: adding them one by one with
    ``add_revoked_certificate`` copies the list each time and is quadratic (10x slower at 100,000 entries).
    """
    from cryptography import x509

    this_update = now.replace(microsecond=0) - CRL_BACKDATE
    extensions = _entry_extensions()
    entry, when = x509.RevokedCertificateBuilder, datetime.fromisoformat
    revoked = [entry(int(serial, 16), when(revoked_at), extensions[reason]).build()
               for serial, revoked_at, reason in rows]
    issuer_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.cert.subject,
        last_update=this_update,
        next_update=this_update + timedelta(days=days),
        revoked_certificates=revoked,
    )
    builder = (
        builder.add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
    )
    return issuer.sign(builder)


def crl_pem(der: bytes) -> bytes:
    """PEM form of a DER CRL: what Expressway's manual CRL upload takes."""
    import base64

    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN X509 CRL-----\n{lines}\n-----END X509 CRL-----\n".encode()


@dataclass
class SignedCrl:
    ca: str
    crl_number: int
    this_update: str
    next_update: str
    entries: int
    sha256: str
    crl_url: str | None
    der: bytes

    def record(self) -> dict[str, Any]:
        return {"ca": self.ca, "crl_number": self.crl_number, "this_update": self.this_update,
                "next_update": self.next_update, "entries": self.entries, "sha256": self.sha256,
                "crl_url": self.crl_url}


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_CRL_DAYS:
        raise UsageError(f"--days {days}: a CRL must be valid for 1 to {MAX_CRL_DAYS} days")


def _check_out_dir(out_dir: Path, names: list[str]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is not a folder")
    for name in names:
        for file_name in (crl_file_name(name), crl_file_name(name) + ".pem"):
            check_writable_target(out_dir / file_name, overwrite=True)


def issue_crls(
    store: "Store", secrets: "CASecrets | SecretSource", *, now: datetime, days: int = DEFAULT_CRL_DAYS,
    out_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Sign a new CRL for every CA that needs one; keep each in the ledger and, with ``out_dir``, write
    ``<ca>.crl`` (DER) and ``<ca>.crl.pem`` there. Each CRL gets the CA's next CRL number.

    Every key is unlocked and every output checked before anything is signed; the CRLs and their numbers commit
    in one transaction, so a failure before the commit leaves the ledger and ``out_dir`` as they were. The files
    are written after the commit, each atomically; the ledger keeps every CRL, so a run cut short there is
    completed by ``privca publish`` or the next ``privca crl``.
    """
    check_days(days)
    ledger = store.require_ca()
    rows = crl_issuers(ledger, now)
    if not rows:
        raise StoreError(f"{store.path}: no CA needs a CRL (every CA is revoked or expired)")
    if out_dir is not None:
        _check_out_dir(out_dir, [row["name"] for row in rows])
    unlock = CASecrets.of(secrets)  # asks for the passphrase or PIN once, for all of them
    issuers = [load_issuer(store, row, unlock) for row in rows]
    created = out_dir is not None and not out_dir.exists()
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{out_dir}: cannot create the folder ({exc.strerror})") from None
    try:
        signed = _sign_and_record(ledger, issuers, now, days)
    except BaseException:
        if created and out_dir is not None:
            out_dir.rmdir()
        raise
    records = []
    for item in signed:
        record = item.record()
        if out_dir is not None:
            der_path = out_dir / crl_file_name(item.ca)
            atomic_write(der_path, item.der, overwrite=True)
            atomic_write(der_path.with_name(der_path.name + ".pem"), crl_pem(item.der), overwrite=True)
            record["files"] = [str(der_path), str(der_path) + ".pem"]
        records.append(record)
    return records


def _sign_and_record(ledger: Ledger, issuers: list[Issuer], now: datetime, days: int) -> list[SignedCrl]:
    """Sign each CA's next CRL and record it, all in one transaction."""
    from cryptography.hazmat.primitives.serialization import Encoding

    signed: list[SignedCrl] = []
    with ledger.write():
        for issuer in issuers:
            row = ledger.ca(issuer.id)  # read again inside the transaction: the number must never repeat
            if row["status"] == "revoked":
                # Revoked since the keys were unlocked (a compromise): its key must not sign anything more.
                raise RevocationError(f"CA {row['name']}: was revoked meanwhile; no CRL signed, run privca crl again")
            previous = ledger.conn.execute("SELECT this_update FROM crls WHERE ca_id = ?", (issuer.id,)).fetchone()
            entries = revoked_entries(ledger, issuer.id, since=previous["this_update"] if previous else None)
            number = int(row["crl_number"]) + 1
            crl = build_crl(issuer, entries, now=now, days=days, crl_number=number)
            der = crl.public_bytes(Encoding.DER)
            next_update = crl.next_update_utc
            assert next_update is not None  # build_crl always sets it
            item = SignedCrl(row["name"], number, iso(crl.last_update_utc), iso(next_update), len(entries),
                             hashlib.sha256(der).hexdigest(), row["crl_url"], der)
            ledger.conn.execute(
                "INSERT OR REPLACE INTO crls (ca_id, crl_number, this_update, next_update, entries, sha256, der)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (issuer.id, number, item.this_update, item.next_update, item.entries, item.sha256, der),
            )
            ledger.conn.execute("UPDATE cas SET crl_number = ?, crl_changes = 0 WHERE id = ?", (number, issuer.id))
            ledger.record_event(now, "crl", {k: v for k, v in item.record().items() if k != "crl_url"})
            signed.append(item)
    return signed


def crl_next_updates(ledger: Ledger, now: datetime) -> dict[int, str]:
    """When each CA's latest CRL expires (its nextUpdate), by CA id; ``privca plan`` schedules from it."""
    return {int(row["ca_id"]): row["next_update"]
            for row in ledger.conn.execute("SELECT ca_id, next_update FROM crls")}


def latest_crl(ledger: Ledger, ca_id: int) -> "sqlite3.Row | None":
    return ledger.conn.execute("SELECT * FROM crls WHERE ca_id = ?", (ca_id,)).fetchone()


def issuing_health(store: "Store", now: datetime) -> dict[str, Any]:
    """Can the store issue? ``{"ok", "ca", "not_after", "problem"}``: an active, unexpired issuing CA is needed."""
    ledger = store.require_ca()
    row = ledger.active_ca("issuing")
    if row is None:
        latest = ledger.latest_ca("issuing")
        problem = (f"no active issuing CA ({latest['name']} is {latest['status']})" if latest is not None
                   else "no issuing CA")
        return {"ok": False, "ca": None, "not_after": None, "problem": problem}
    if row["not_after"] <= iso(now):
        return {"ok": False, "ca": row["name"], "not_after": row["not_after"],
                "problem": f"issuing CA {row['name']} expired on {row['not_after']}"}
    return {"ok": True, "ca": row["name"], "not_after": row["not_after"], "problem": None}


def crl_status(store: "Store", now: datetime) -> list[dict[str, Any]]:
    """How fresh each CA's latest CRL is.

    ``state`` is ``fresh``; ``due`` when less than a third of its lifetime is left or revocations have changed
    since it was signed; ``stale`` once nextUpdate has passed (Expressway then treats all of the CA's
    certificates as revoked); ``missing`` when no CRL was ever signed.
    """
    ledger = store.require_ca()
    report = []
    for row in crl_issuers(ledger, now):
        crl = ledger.conn.execute(
            "SELECT crl_number, this_update, next_update, entries FROM crls WHERE ca_id = ?", (row["id"],)
        ).fetchone()
        item: dict[str, Any] = {"ca": row["name"], "role": row["role"], "crl_url": row["crl_url"],
                                "ocsp_url": row["ocsp_url"], "pending_changes": row["crl_changes"]}
        if crl is None:
            item.update(crl_number=None, this_update=None, next_update=None, entries=None, age_seconds=None,
                        remaining_seconds=None, state="missing")
        else:
            this_update, next_update = (datetime.fromisoformat(crl[k]) for k in ("this_update", "next_update"))
            remaining = (next_update - now).total_seconds()
            lifetime = (next_update - this_update).total_seconds()
            if remaining <= 0:
                state = "stale"
            elif remaining < lifetime * DUE_FRACTION or row["crl_changes"]:
                state = "due"
            else:
                state = "fresh"
            item.update(crl_number=crl["crl_number"], this_update=crl["this_update"],
                        next_update=crl["next_update"], entries=crl["entries"],
                        age_seconds=int((now - this_update).total_seconds()), remaining_seconds=int(remaining),
                        state=state)
        report.append(item)
    return report
