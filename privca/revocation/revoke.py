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

from privca.authority.ca import Issuer, crl_file_name, load_issuer
from privca.common.serials import serial_text
from privca.errors import ClockError, OutputError, RevocationError, StoreError, UsageError
from privca.common.fsutil import atomic_write, check_writable_target, make_output_dirs, refuse_inside_store
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger import cas, certificates, crls, events
from privca.ledger.db import Ledger
from privca.ledger.records import (CA, CARole, CAStatus, CertificateStatus, CrlRecord, IssuedCertificate, Json,
                                   RevocationReason, iso)

if TYPE_CHECKING:
    from cryptography import x509

    from privca.ledger.store import Store

# RFC 5280 section 5.3.1 CRLReason names (as people write them) -> cryptography's ReasonFlags attribute.
REASONS: dict[RevocationReason, str] = {
    RevocationReason.UNSPECIFIED: "unspecified",
    RevocationReason.KEY_COMPROMISE: "key_compromise",
    RevocationReason.CA_COMPROMISE: "ca_compromise",
    RevocationReason.AFFILIATION_CHANGED: "affiliation_changed",
    RevocationReason.SUPERSEDED: "superseded",
    RevocationReason.CESSATION_OF_OPERATION: "cessation_of_operation",
    RevocationReason.CERTIFICATE_HOLD: "certificate_hold",
    RevocationReason.PRIVILEGE_WITHDRAWN: "privilege_withdrawn",
}
HOLD = RevocationReason.CERTIFICATE_HOLD

DEFAULT_CRL_DAYS = 7  # Expressway downloads CRLs daily: a daily renewal leaves six days to notice a failure
MAX_CRL_DAYS = 365
DUE_FRACTION = 1 / 3  # a CRL is due for renewal when less than a third of its lifetime is left

# A CRL's thisUpdate is set a little in the past, like a certificate's notBefore, so that a peer whose clock is
# a few minutes behind does not reject a CRL fetched right after it was published as "not yet valid".
CRL_BACKDATE = timedelta(minutes=5)


def parse_reason(text: str) -> RevocationReason:
    """The RFC 5280 reason for ``text`` (any letter case); UsageError naming the choices otherwise."""
    by_folded = {name.value.casefold(): name for name in REASONS}
    try:
        return by_folded[text.strip().casefold()]
    except KeyError:
        raise UsageError(f"--reason {text!r}: not a revocation reason; choose one of {', '.join(REASONS)}") from None


def reason_flag(reason: str | None) -> "x509.ReasonFlags | None":
    """The cryptography flag for a reason; None for unspecified, which is left out (RFC 5280 5.3.1)."""
    from cryptography import x509

    if reason is None or reason == RevocationReason.UNSPECIFIED:
        return None
    flag: x509.ReasonFlags = getattr(x509.ReasonFlags, REASONS[RevocationReason(reason)])
    return flag


# --- revoking ---------------------------------------------------------------------------------------------------


def mark_revoked(ledger: Ledger, cert: IssuedCertificate, reason: RevocationReason, now: datetime,
                 details: dict[str, object] | None = None) -> tuple[CertificateStatus, datetime]:
    """The ledger change of revoking (or holding) one certificate, with its event; call inside ``write()``.

    Shared by ``revoke`` and by renewal's ``--revoke-old`` (reason superseded), so both count towards the next
    CRL the same way. Returns the new status and the revocation time.
    """
    # A held certificate keeps the date it stopped being trusted when it is revoked for good.
    revoked_at = cert.revoked_at if cert.status is CertificateStatus.HOLD and cert.revoked_at else now
    status = CertificateStatus.HOLD if reason is HOLD else CertificateStatus.REVOKED
    certificates.set_revoked(ledger, cert.id, status, revoked_at, reason)
    cas.count_crl_change(ledger, cert.issuer_id)
    issuer = cas.by_id(ledger, cert.issuer_id)
    events.record(ledger, now, "hold" if status is CertificateStatus.HOLD else "revoke",
                  {"reason": reason.value, "subject": cert.subject, "issuer": issuer.name,
                   "previous_status": cert.status.value, **(details or {})}, serial=cert.serial)
    return status, revoked_at


def _revocation(serial: str, kind: str, subject: str, status: str, revoked_at: datetime | None,
                reason: RevocationReason | None, crl_of: str) -> Json:
    """What ``revoke``, ``unhold`` and ``revoke --ca`` report (their ``--json``)."""
    return {"serial": serial_text(serial), "kind": kind, "subject": subject, "status": status,
            "revoked_at": None if revoked_at is None else iso(revoked_at),
            "revocation_reason": None if reason is None else reason.value, "crl_of": crl_of}


def revoke(store: "Store", serial: str, reason: str, *, now: datetime, ca: bool = False) -> Json:
    """Revoke a certificate (or, with ``ca=True``, an intermediate CA) and record it with its event.

    ``certificateHold`` suspends a certificate until ``release``; any other reason is final. A held certificate
    can be revoked for good later and keeps the date it was first held. Nothing changes when an error is raised.

    Raises:
        RevocationError: unknown serial, already revoked, a CA serial without ``ca=True`` (or a leaf with it),
            or the root CA.
    """
    why = parse_reason(reason)
    ledger = store.require_ca()
    with ledger.write():
        wanted = certificates.resolve_serial(ledger, serial)
        if ca:
            return _revoke_ca(ledger, wanted, why, now)
        found = certificates.all_by_serial(ledger, wanted)
        if not found:
            as_ca = cas.by_serial(ledger, wanted)
            if as_ca is not None:
                raise RevocationError(
                    f"serial {serial_text(wanted)}: is the {as_ca.role} CA {as_ca.name}, not a certificate; to revoke a "
                    "CA add --ca (privca never revokes a CA by accident)"
                )
            raise RevocationError(f"serial {serial_text(wanted)}: no such certificate in the ledger; see: privca list")
        if len(found) > 1:
            raise RevocationError(f"serial {serial_text(wanted)}: issued by {len(found)} different CAs; the ledger is inconsistent")
        cert = found[0]
        since = iso(cert.revoked_at) if cert.revoked_at else None
        if cert.status is CertificateStatus.REVOKED:
            previous = cert.revocation_reason.value if cert.revocation_reason else None
            raise RevocationError(f"serial {serial_text(wanted)}: already revoked on {since} ({previous}); nothing to do")
        if cert.status is CertificateStatus.HOLD and why is HOLD:
            raise RevocationError(
                f"serial {serial_text(wanted)}: already on hold since {since}; release it with: privca unhold {serial_text(wanted)}"
            )
        _refuse_date_before(now, cert.not_before, f"certificate {serial_text(wanted)}")
        status, revoked_at = mark_revoked(ledger, cert, why, now)
        issuer = cas.by_id(ledger, cert.issuer_id)
    return _revocation(wanted, "certificate", cert.subject, status.value, revoked_at, why, issuer.name)


def _revoke_ca(ledger: Ledger, serial: str, reason: RevocationReason, now: datetime) -> Json:
    found = cas.by_serial(ledger, serial)
    if found is None:
        if certificates.all_by_serial(ledger, serial):
            raise RevocationError(f"serial {serial_text(serial)}: is a certificate, not a CA; drop --ca to revoke it")
        raise RevocationError(f"serial {serial_text(serial)}: no such CA in the ledger; see: privca status")
    if found.parent_id is None:
        raise RevocationError(
            f"serial {serial_text(serial)}: is the root CA {found.name}; a root cannot be revoked on its own CRL; remove it "
            "from every trust store instead"
        )
    if reason is HOLD:
        raise RevocationError(f"--reason {HOLD}: privca puts only certificates on hold, not CAs; choose a final reason")
    if found.status is CAStatus.REVOKED:
        when = iso(found.revoked_at) if found.revoked_at else None
        previous = found.revocation_reason.value if found.revocation_reason else None
        raise RevocationError(f"serial {serial_text(serial)}: CA {found.name} already revoked on {when} ({previous})")
    _refuse_date_before(now, found.not_before, f"CA {found.name}")
    cas.revoke(ledger, found.id, reason, now)
    cas.count_crl_change(ledger, found.parent_id)
    parent = cas.by_id(ledger, found.parent_id)
    events.record(ledger, now, "revoke-ca", {"reason": reason.value, "ca": found.name, "subject": found.subject,
                                             "issuer": parent.name}, serial=serial)
    return _revocation(serial, "ca", found.subject, "revoked", now, reason, parent.name)


def _refuse_date_before(now: datetime, not_before: datetime, what: str) -> None:
    """A revocation dated before the certificate even begins can only come from a clock that went back."""
    if now < not_before:
        raise ClockError(f"clock: this machine says {iso(now)}, before {what} even begins ({iso(not_before)}); "
                         "nothing revoked; fix the clock (NTP) and run again")


def release(store: "Store", serial: str, *, now: datetime) -> Json:
    """Take a certificate off hold: it is valid again and drops off its CA's next CRL (RFC 5280 5.3.1)."""
    ledger = store.require_ca()
    with ledger.write():
        wanted = certificates.resolve_serial(ledger, serial)
        cert = certificates.by_serial(ledger, wanted)
        if cert.status is not CertificateStatus.HOLD:
            raise RevocationError(
                f"serial {serial_text(wanted)}: is {cert.status}, not on hold; only a {HOLD} revocation can be released"
            )
        certificates.set_valid(ledger, cert.id)
        cas.count_crl_change(ledger, cert.issuer_id)
        issuer = cas.by_id(ledger, cert.issuer_id)
        events.record(ledger, now, "release", {"subject": cert.subject, "issuer": issuer.name,
                                               "held_since": iso(cert.revoked_at) if cert.revoked_at else None},
                      serial=wanted)
    return _revocation(wanted, "certificate", cert.subject, "valid", None, None, issuer.name)


# --- CRLs -------------------------------------------------------------------------------------------------------


def crl_issuers(ledger: Ledger, now: datetime) -> list[CA]:
    """The CAs that must publish a CRL: the same generations peers must still trust (``cas.trusted``), so a
    retired CA keeps its CRL fresh while a certificate it signed is in service, and stops after that."""
    return sorted(cas.trusted(ledger, now), key=lambda ca: ca.id)


def _entry_extensions() -> dict[str | None, list[Any]]:
    """The reasonCode entry extension for each reason, made once and shared by every entry."""
    from cryptography import x509
    from cryptography.x509.oid import CRLEntryExtensionOID

    extensions: dict[str | None, list[Any]] = {None: []}
    for name in REASONS:
        flag = reason_flag(name)
        extensions[name.value] = [] if flag is None else [
            x509.Extension(CRLEntryExtensionOID.CRL_REASON, False, x509.CRLReason(flag))
        ]
    return extensions


def build_crl(
    issuer: Issuer, rows: Iterable[tuple[str, str, str | None]], *, now: datetime, days: int, crl_number: int
) -> "x509.CertificateRevocationList":
    """Sign a CRL listing ``rows`` of ``(serial hex, revoked_at ISO, reason)``.

    The entries are built into one list and handed to the builder at once: adding them one by one with
    ``add_revoked_certificate`` copies the list each time and is quadratic (10x slower at 100,000 entries).
    """
    from cryptography import x509

    rows = list(rows)
    newest = max((row[1] for row in rows), default=None)  # ISO text: text order is time order
    this_update = crl_this_update(now, newest)
    extensions = _entry_extensions()
    entry, when = x509.RevokedCertificateBuilder, datetime.fromisoformat
    # A revocation recorded within the backdating window is listed at thisUpdate: a CRL never lists a
    # revocation after its own thisUpdate, and peers whose clocks lag a little still take it.
    latest = iso(this_update)
    revoked = [entry(int(serial, 16), when(revoked_at) if revoked_at <= latest else this_update,
                     extensions[reason]).build()
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
    crl: x509.CertificateRevocationList = issuer.sign(builder)
    return crl


def crl_this_update(now: datetime, newest_revocation: str | None) -> datetime:
    """A CRL's thisUpdate: ``now`` backdated a little for peers whose clocks lag. A revocation recorded after
    ``now`` means this clock went back since: refused, as a CRL dated before what it reports would be."""
    if newest_revocation is not None and newest_revocation > iso(now):
        raise ClockError(f"clock: this machine says {iso(now)}, before a revocation the CRL lists "
                         f"({newest_revocation}); no CRL signed; fix the clock (NTP) and run again")
    return now.replace(microsecond=0) - CRL_BACKDATE


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Certificates that expired before this moment leave the CRL made at ``now``.

    RFC 5280 section 3.3: an entry stays until it has appeared on one regularly scheduled CRL issued after the
    certificate expired. A CRL is made at least once per lifetime (``days``, never less than a week here), so an
    entry kept for that long after expiry is on at least one. The cutoff depends on ``now`` only, never on an
    earlier CRL's times: one run with a clock far ahead must not empty every later CRL.
    """
    return now - timedelta(days=max(days, DEFAULT_CRL_DAYS)) - CRL_BACKDATE


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

    def record(self) -> Json:
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
) -> list[Json]:
    """Sign a new CRL for every CA that needs one; keep each in the ledger and, with ``out_dir``, write
    ``<ca>.crl`` (DER) and ``<ca>.crl.pem`` there. Each CRL gets the CA's next CRL number.

    Every key is unlocked and every output checked before anything is signed; the CRLs and their numbers commit
    in one transaction, so a failure before the commit leaves the ledger and ``out_dir`` as they were. The files
    are written after the commit, each atomically; the ledger keeps every CRL, so a run cut short there is
    completed by ``privca publish`` or the next ``privca crl``.
    """
    check_days(days)
    ledger = store.require_ca()
    signers = crl_issuers(ledger, now)
    if not signers:
        raise StoreError(f"{store.path}: no CA needs a CRL (every CA is revoked or expired)")
    if out_dir is not None:
        refuse_inside_store(out_dir, store.path, "--out")
        _check_out_dir(out_dir, [ca.name for ca in signers])
    unlock = CASecrets.of(secrets)  # asks for the passphrase or PIN once, for all of them
    issuers = [load_issuer(store, ca, unlock, now=now) for ca in signers]
    created = out_dir is not None and not out_dir.exists()
    if out_dir is not None:
        try:
            make_output_dirs(out_dir)
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
            current = cas.by_id(ledger, issuer.id)  # read again inside the transaction: the number must never repeat
            if current.status is CAStatus.REVOKED:
                # Revoked since the keys were unlocked (a compromise): its key must not sign anything more.
                raise RevocationError(f"CA {current.name}: was revoked meanwhile; no CRL signed, run privca crl again")
            entries = certificates.revoked_entries(ledger, issuer.id, since=retention_cutoff(now, days))
            number = current.crl_number + 1
            crl = build_crl(issuer, entries, now=now, days=days, crl_number=number)
            der = crl.public_bytes(Encoding.DER)
            next_update = crl.next_update_utc
            assert next_update is not None  # build_crl always sets it
            kept = CrlRecord(issuer.id, number, crl.last_update_utc, next_update, len(entries),
                             hashlib.sha256(der).hexdigest(), der)
            item = SignedCrl(current.name, number, iso(kept.this_update), iso(kept.next_update), kept.entries,
                             kept.sha256, current.crl_url, der)
            crls.keep(ledger, kept)
            cas.set_crl_number(ledger, issuer.id, number)
            events.record(ledger, now, "crl", {k: v for k, v in item.record().items() if k != "crl_url"})
            signed.append(item)
    return signed


def issuing_health(store: "Store", now: datetime) -> Json:
    """Can the store issue? ``{"ok", "ca", "not_after", "problem"}``: an active, unexpired issuing CA is needed."""
    ledger = store.require_ca()
    found = cas.active(ledger, CARole.ISSUING)
    if found is None:
        latest = cas.latest(ledger, CARole.ISSUING)
        problem = (f"no active issuing CA ({latest.name} is {latest.status})" if latest is not None
                   else "no issuing CA")
        return {"ok": False, "ca": None, "not_after": None, "problem": problem}
    if found.not_after <= now:
        return {"ok": False, "ca": found.name, "not_after": iso(found.not_after),
                "problem": f"issuing CA {found.name} expired on {iso(found.not_after)}"}
    return {"ok": True, "ca": found.name, "not_after": iso(found.not_after), "problem": None}


def crl_status(store: "Store", now: datetime) -> list[Json]:
    """How fresh each CA's latest CRL is.

    ``state`` is ``fresh``; ``due`` when less than a third of its lifetime is left or revocations have changed
    since it was signed; ``stale`` once nextUpdate has passed (Expressway then treats all of the CA's
    certificates as revoked); ``missing`` when no CRL was ever signed.
    """
    ledger = store.require_ca()
    report = []
    for ca in crl_issuers(ledger, now):
        crl = crls.latest(ledger, ca.id)
        item: Json = {"ca": ca.name, "role": ca.role.value, "crl_url": ca.crl_url, "ocsp_url": ca.ocsp_url,
                      "pending_changes": ca.crl_changes}
        if crl is None:
            item.update(crl_number=None, this_update=None, next_update=None, entries=None, age_seconds=None,
                        remaining_seconds=None, state="missing")
        else:
            remaining = (crl.next_update - now).total_seconds()
            lifetime = (crl.next_update - crl.this_update).total_seconds()
            if remaining <= 0:
                state = "stale"
            elif remaining < lifetime * DUE_FRACTION or ca.crl_changes:
                state = "due"
            else:
                state = "fresh"
            item.update(crl_number=crl.crl_number, this_update=iso(crl.this_update),
                        next_update=iso(crl.next_update), entries=crl.entries,
                        age_seconds=int((now - crl.this_update).total_seconds()), remaining_seconds=int(remaining),
                        state=state)
        report.append(item)
    return report
