"""Renewal: a new certificate with a new serial for the same names and profile, linked to the one it replaces.

The key comes from a new CSR (recommended: the device makes a new key) or is the key on record: the CSR the old
certificate was issued from, whose signature proved the device holds the key, or for certificates recorded before
CSRs were kept, the old certificate's own public key. Either way the subject and SANs come from the old
certificate and the profile decides every extension, exactly as for ``privca issue``; the names and the key are
checked against the profile as it is today. Signing, recording and writing files is ``signer.sign_and_record``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypedDict

from privca.common.serials import serial_text
from privca.errors import LedgerError, PolicyViolation, PrivcaError, ProfileError, UsageError
from privca.keys.keystore import CASecrets, SecretSource
from privca.issuance.policy import IssuanceRequest, check, load_csr, read_csr_file, request_from_certificate
from privca.issuance.profiles import Profile, load_profile
from privca.authority.signer import (InTransaction, Issued, PlannedCertificate, Progress, check_out_dir, output_paths,
                                     output_problems, raise_problems, sign_and_record)
from privca.ledger import certificates
from privca.ledger.records import CertificateStatus, IssuedCertificate, Json, RevocationReason, iso

if TYPE_CHECKING:
    from privca.ledger.db import Ledger
    from privca.ledger.store import Store

# A renewal's files are named after the old ones plus the renewal date: expc.pem -> expc-20271101.pem.
_DATE_SUFFIX = re.compile(r"-\d{8}$")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")

KEY_FROM_NEW_CSR = "new-csr"
KEY_FROM_CSR_ON_RECORD = "csr-on-record"
KEY_FROM_CERTIFICATE = "certificate"


@dataclass
class Renewal:
    """One certificate to renew: its ledger record, and either a ready request or why it needs a new CSR."""

    old: IssuedCertificate
    key_source: str
    request: IssuanceRequest | None = None
    csr_der: bytes | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> Json:
        """What ``renew --dry-run`` and ``plan`` show for this certificate."""
        return {"serial": serial_text(self.old.serial), "subject": self.old.subject, "profile": self.old.profile,
                "not_after": iso(self.old.not_after), "key_source": self.key_source,
                "problems": list(self.problems)}


class RenewalResult(TypedDict):
    """What ``renew --expiring-within`` did: the renewed certificates' records, and those needing a new CSR."""

    renewed: list[Json]
    needs_csr: list[Json]


def _renewed_by(ledger: "Ledger", serial: str) -> list[str]:
    """Serials of the valid certificates that renew ``serial``."""
    return [cert.serial for cert in certificates.successors(ledger, serial) if cert.status is CertificateStatus.VALID]


def _check_renewable(ledger: "Ledger", old: IssuedCertificate) -> None:
    if old.status is CertificateStatus.REVOKED:
        reason = old.revocation_reason.value if old.revocation_reason else None
        when = iso(old.revoked_at) if old.revoked_at else None
        raise PolicyViolation(f"serial {serial_text(old.serial)}: revoked ({reason}) on {when}; "
                              "a revoked certificate is not renewed; issue a new one with privca issue")
    if old.status is not CertificateStatus.VALID:
        raise PolicyViolation(f"serial {serial_text(old.serial)}: on hold; release or revoke it before renewing")
    for successor in _renewed_by(ledger, old.serial):
        raise UsageError(f"serial {serial_text(old.serial)}: already renewed by {serial_text(successor)}; "
                         f"renew that one instead: privca renew {serial_text(successor)}")


def _profile(name: str, store: "Store", cache: dict[str, Profile]) -> Profile:
    if name not in cache:
        cache[name] = load_profile(name, store.profiles_dir)
    return cache[name]


def same_key_renewal(old: IssuedCertificate, profile: Profile) -> Renewal:
    """Renew with the key on record: the CSR the certificate was issued from, else its own public key."""
    from cryptography import x509

    cert = old.certificate
    source = f"serial {serial_text(old.serial)}"
    public_key = cert.public_key()
    key_source, csr_der = KEY_FROM_CERTIFICATE, None
    if old.csr_der is not None:
        csr = x509.load_der_x509_csr(old.csr_der)
        # The CSR on record is only used if it still proves possession of the very key that was certified.
        if csr.is_signature_valid and csr.public_key() == public_key:
            key_source, csr_der = KEY_FROM_CSR_ON_RECORD, old.csr_der
    request, problems = request_from_certificate(cert, public_key, source, profile, csr_sha256=old.csr_sha256
                                                 if csr_der is not None else None,
                                                 requested_eku=list(old.requested_eku))
    return Renewal(old, key_source, request, csr_der, problems)


def _refuse(source: str, problems: list[str]) -> NoReturn:
    if len(problems) == 1:
        raise PolicyViolation(f"{source}: {problems[0]}; nothing renewed")
    raise PolicyViolation(f"{source}: nothing renewed; {len(problems)} problems", problems=problems)


def _name_set(request: IssuanceRequest) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Subject attributes and SANs, compared without regard to order or letter case (DNS names are caseless)."""
    subject = sorted((attribute.oid.dotted_string, str(attribute.value).casefold()) for attribute in request.subject)
    sans = sorted({(entry.kind, entry.value.casefold()) for entry in request.sans})
    return subject, sans


def new_csr_renewal(old: IssuedCertificate, profile: Profile, csr_path: Path) -> Renewal:
    """Renew with the key of a new CSR, whose names must be those of the certificate it renews."""
    from cryptography.hazmat.primitives.serialization import Encoding

    csr = load_csr(read_csr_file(csr_path), str(csr_path))
    der = csr.public_bytes(Encoding.DER)
    from_csr, problems = check(csr, der, str(csr_path), profile)
    if from_csr is None:
        _refuse(str(csr_path), problems)
    cert = old.certificate
    renewal, problems = request_from_certificate(cert, from_csr.public_key, str(csr_path), profile,
                                                 csr_sha256=from_csr.csr_sha256, requested_eku=from_csr.requested_eku)
    if renewal is None:
        _refuse(f"serial {serial_text(old.serial)}", problems)
    if _name_set(from_csr) != _name_set(renewal):
        raise PolicyViolation(
            f"{csr_path}: names differ from certificate {serial_text(old.serial)} (CSR: {from_csr.subject.rfc4514_string()}; "
            f"{', '.join(entry.text() for entry in from_csr.sans)}); a renewal keeps the names: use privca issue "
            "for a certificate with other names"
        )
    renewal.notes = from_csr.notes
    if from_csr.public_key == cert.public_key():
        renewal.notes.append("the CSR carries the same key as the certificate it renews; a new key is recommended")
    return Renewal(old, KEY_FROM_NEW_CSR, renewal, der)


def _output_stem(old: IssuedCertificate, now: datetime) -> str:
    if old.cert_path:
        name = Path(old.cert_path).name
        stem = name[:-4] if name.endswith(".pem") else Path(name).stem
    else:  # recorded without files: name them after the first SAN
        stem = _UNSAFE_FILE_CHARACTERS.sub("_", old.sans[0] if old.sans else old.serial)
    return f"{_DATE_SUFFIX.sub('', stem)}-{now:%Y%m%d}"


def _output_folder(old: IssuedCertificate, out_dir: Path | None, csr_path: Path | None) -> Path:
    """``--out``, else next to the new CSR, else next to the old certificate, else the current folder."""
    if out_dir is not None:
        return out_dir
    if csr_path is not None:
        return csr_path.parent
    if old.cert_path and Path(old.cert_path).parent.is_dir():
        return Path(old.cert_path).parent
    return Path(".")


def _planned(renewal: Renewal, folder: Path, now: datetime) -> PlannedCertificate:
    assert renewal.request is not None
    return PlannedCertificate(renewal.request, *output_paths(folder, _output_stem(renewal.old, now)),
                              csr_der=renewal.csr_der, replaces=renewal.old.serial)


def _after_recording(planned: list[PlannedCertificate], revoke_old: bool, now: datetime,
                     old_by_serial: dict[str, IssuedCertificate]) -> InTransaction:
    """The changes that commit together with the renewed certificates: each old certificate is renewed only once,
    and with ``--revoke-old`` it is revoked as superseded."""
    from privca.revocation.revoke import mark_revoked

    def apply(ledger: "Ledger", made: list[IssuedCertificate]) -> None:
        for item, new in zip(planned, made, strict=True):
            old = old_by_serial[str(item.replaces)]
            if _renewed_by(ledger, old.serial) != [new.serial]:
                raise LedgerError(f"serial {serial_text(old.serial)}: renewed by another privca meanwhile; nothing renewed")
            if revoke_old:
                current = certificates.by_id(ledger, old.id)
                if current is None or current.status is not CertificateStatus.VALID:
                    raise LedgerError(f"serial {serial_text(old.serial)}: no longer valid in the ledger; nothing renewed")
                # RFC 5280 5.3.1: superseded, so the next CRL lists the certificate the renewal replaced.
                mark_revoked(ledger, current, RevocationReason.SUPERSEDED, now, {"replaced_by": new.serial})

    return apply


def renew(
    store: "Store",
    serial: str,
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    csr_path: Path | None = None,
    profile: str | None = None,
    days: int | None = None,
    out_dir: Path | None = None,
    revoke_old: bool = False,
    force: bool = False,
) -> Json:
    """Renew one certificate; return the new certificate's record with ``replaces``, ``key_source`` and
    ``old_status``. Without ``csr_path`` the key on record is certified again."""
    from privca.ledger.journal import recover

    ledger = store.require_ca()
    recover(store)  # finish or undo what a killed privca left behind, before planning around it
    old = certificates.by_serial(ledger, certificates.resolve_serial(ledger, serial))
    _check_renewable(ledger, old)
    chosen = load_profile(profile or old.profile, store.profiles_dir)
    check_out_dir(out_dir)
    if csr_path is not None:
        renewal = new_csr_renewal(old, chosen, csr_path)
    else:
        renewal = same_key_renewal(old, chosen)
        if renewal.request is None:
            raise PolicyViolation(f"serial {serial_text(old.serial)}: cannot renew with the key on record "
                                  f"({'; '.join(renewal.problems)}); get a new CSR from the device and run: "
                                  f"privca renew {old.serial} --csr NEW.csr")
    item = _planned(renewal, _output_folder(old, out_dir, csr_path), now)
    raise_problems(output_problems(item.outputs, f"serial {serial_text(old.serial)}", force=force, seen={}), 1, "certificate")
    issued = sign_and_record(store, [item], secrets, now=now, days=days, action="renew",
                             in_transaction=_after_recording([item], revoke_old, now, {old.serial: old}))
    return _annotated(issued[0], renewal, revoke_old)


def renewal_candidates(store: "Store", now: datetime, within_days: int) -> list[Renewal]:
    """Every valid certificate expiring within ``within_days`` that has not been renewed yet, each either ready
    for a same-key renewal or with the reasons it needs a new CSR from the device."""
    if within_days < 0:
        raise UsageError("--expiring-within: must be 0 or more days")
    ledger = store.require_ca()
    profiles: dict[str, Profile] = {}
    candidates = []
    for old in list(certificates.query(ledger, now=now, expiring_within_days=within_days)):
        if _renewed_by(ledger, old.serial):
            continue  # already renewed
        try:
            chosen = _profile(old.profile, store, profiles)
        except ProfileError as exc:
            candidates.append(Renewal(old, KEY_FROM_CERTIFICATE, problems=[exc.message]))
            continue
        candidates.append(same_key_renewal(old, chosen))
    return candidates


def renew_candidates(
    store: "Store",
    candidates: list[Renewal],
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    days: int | None = None,
    out_dir: Path | None = None,
    revoke_old: bool = False,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RenewalResult:
    """Renew the ready ``candidates`` with the key on record and list the others, which need a new CSR from the
    device. One transaction: either every ready certificate is renewed, or none is.

    Returns ``{"renewed": [records], "needs_csr": [summaries]}``; with ``dry_run``, ``"renewed"`` lists what
    would be renewed and nothing is signed (no passphrase needed).
    """
    check_out_dir(out_dir)
    ready = [candidate for candidate in candidates if candidate.request is not None]
    needs_csr = [candidate.summary() for candidate in candidates if candidate.request is None]
    if dry_run or not ready:
        return {"renewed": [candidate.summary() for candidate in ready] if dry_run else [], "needs_csr": needs_csr}
    planned = [_planned(candidate, _output_folder(candidate.old, out_dir, None), now) for candidate in ready]
    problems: list[tuple[type[PrivcaError], str]] = []
    seen: dict[Path, object] = {}
    for item in planned:
        problems += output_problems(item.outputs, f"serial {serial_text(str(item.replaces))}", force=force, seen=seen)
    raise_problems(problems, len(planned), "renewals")
    old_by_serial = {candidate.old.serial: candidate.old for candidate in ready}
    issued = sign_and_record(store, planned, secrets, now=now, days=days, progress=progress, action="renew",
                             in_transaction=_after_recording(planned, revoke_old, now, old_by_serial))
    return {"renewed": [_annotated(made, candidate, revoke_old) for made, candidate in zip(issued, ready, strict=True)],
            "needs_csr": needs_csr}


def renew_expiring(store: "Store", within_days: int, secrets: CASecrets | SecretSource, *, now: datetime,
                   days: int | None = None, out_dir: Path | None = None, revoke_old: bool = False,
                   force: bool = False, dry_run: bool = False, progress: Progress | None = None) -> RenewalResult:
    """``renew --expiring-within``: ``renew_candidates`` for every certificate expiring within ``within_days``."""
    return renew_candidates(store, renewal_candidates(store, now, within_days), secrets, now=now, days=days,
                            out_dir=out_dir, revoke_old=revoke_old, force=force, dry_run=dry_run, progress=progress)


def _annotated(issued: Issued, renewal: Renewal, revoke_old: bool) -> Json:
    """A renewed certificate's record, with where the key came from and what became of the old certificate."""
    record = issued.to_json()
    record["key_source"] = renewal.key_source
    record["old_status"] = "revoked" if revoke_old else "valid"
    return record
