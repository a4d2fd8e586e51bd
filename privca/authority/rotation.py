"""CA rotation: a new issuing CA generation, a root rollover with cross-certificates, and which generations peers
must still trust.

Every generation gets a new key and a new, distinct common name: CUCM replaces a trust certificate that has the
same subject (CUCM Security Guide 12.5(1)SU6, "Certificates"), and Expressway's trusted CA lookup stops at the
first subject match (Expressway Certificate Creation and Use Guide, "Loading Certificates and Keys").

A rotated CA is *retired*, not removed: it issues nothing new, but stays in trust bundles and keeps publishing its
CRL until the last certificate it signed has expired. A root rollover also creates two cross-certificates (RFC 4210
section 4.4 calls them "new with old" and "old with new"), so that during the overlap a peer that trusts only the
old root validates the new hierarchy, and a peer that trusts only the new root validates the old one.
"""

from __future__ import annotations

import re
from datetime import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from privca.authority.ca import (DEFAULT_ISSUING_DAYS, DEFAULT_ISSUING_KEY, DEFAULT_ROOT_DAYS, DEFAULT_ROOT_KEY,
                                 Issuer, ca_certificate_under, ca_name, crl_base_of, crl_url_for, fingerprint,
                                 load_issuer, new_ca, pem_of, root_ca_certificate, serial_hex, undone_on_failure)
from privca.errors import LedgerError, StoreError, UsageError
from privca.keys.keystore import CASecrets, NewCAKey, SecretSource, create_ca_key, token_of
from privca.keys.material import CA_KEY_TYPES, KeySpec
from privca.ledger import cas, crosses, events
from privca.ledger.journal import recover
from privca.ledger.records import CA, CARole, CrossCertificate, Json, iso

if TYPE_CHECKING:
    from cryptography import x509

    from privca.ledger.db import Ledger
    from privca.ledger.store import Store

_TRAILING_NUMBER = re.compile(r"^(.*?(?:\s|-|\sG))(\d+)$")


# --- names ----------------------------------------------------------------------------------------------------


def common_name(ca: CA) -> str:
    """The CN of a CA in the ledger."""
    from privca.common.names import common_name as cn_of

    return cn_of(ca.certificate.subject)


def next_generation_cn(previous_cn: str, previous_generation: int, generation: int) -> str:
    """The default name of a new CA generation: the old name with its generation number replaced, or ``G<n>``
    appended.

    ``Example UC Issuing CA 1`` and ``Example UC Issuing CA 2026-1`` (generation 1) become ``... 2`` and
    ``... 2026-2``; ``Example UC Root CA G1`` becomes ``... G2``; ``Example UC Root CA`` and ``Example UC Root CA
    2026`` (a year, not the generation) become ``... G2``, the usual way CAs name their generations.
    """
    match = _TRAILING_NUMBER.match(previous_cn)
    if match and int(match.group(2)) == previous_generation:
        return f"{match.group(1)}{generation}"
    return f"{previous_cn} G{generation}"


def _check_new_cn(ledger: "Ledger", cn: str, option: str, taken: tuple[str, ...] = ()) -> None:
    """Refuse a CN already used by any CA generation in the ledger (or by another CA made in the same step)."""
    wanted = cn.strip().casefold()
    for existing in [common_name(ca) for ca in cas.all_cas(ledger)] + list(taken):
        if existing.strip().casefold() == wanted:
            raise UsageError(
                f"{option} {cn!r}: a CA generation already has this name; every generation needs a distinct CN "
                "(CUCM replaces a trust certificate with the same subject, Expressway stops at the first match)"
            )


def _organization(ca: CA) -> str | None:
    from cryptography.x509.oid import NameOID

    values = ca.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else None


def _next_generation(ledger: "Ledger", role: CARole) -> int:
    return max((ca.generation for ca in cas.all_cas(ledger) if ca.role is role), default=0) + 1


def _new_key_spec(key_type: str | None, previous: CA | None, fallback: str) -> KeySpec:
    return KeySpec.parse(key_type or (previous.key_type if previous is not None else fallback), CA_KEY_TYPES)


def _validity_under(now: datetime, days: int | None, default_days: int, parent: "x509.Certificate",
                    option: str) -> tuple[datetime, datetime]:
    """notBefore/notAfter for a CA under ``parent``: ``days`` must fit inside the parent; the default is cut
    to the parent's end (a CA never outlives the CA that signed it)."""
    from privca.issuance.builder import validity

    if days is not None and not 1 <= days <= 36500:
        raise UsageError(f"{option} {days}: must be between 1 and 36500 days")
    not_before, not_after = validity(now, days or default_days)
    parent_end = parent.not_valid_after_utc
    if parent_end <= now:
        raise UsageError(f"the signing CA expired on {iso(parent_end)}; a new CA cannot be made under it: run "
                         "privca rotate root while the root is valid, or start a new store with privca init")
    if not_after > parent_end:
        if days is not None:
            raise UsageError(f"{option} {days}: would outlive the signing CA (expires {iso(parent_end)}); "
                             "use fewer days or rotate the root first")
        not_after = parent_end
    return not_before, not_after


def _require_active(ledger: "Ledger", role: CARole) -> CA:
    found = cas.active(ledger, role)
    if found is None:
        raise StoreError(f"{ledger.path.parent}: no active {role} CA; privca rotate root creates a new hierarchy")
    return found


def _unchanged(ledger: "Ledger", role: CARole, expected: CA | None) -> None:
    """Inside the write transaction: the active CA is still the one this rotation started from."""
    current = cas.active(ledger, role)
    if (current.id if current else None) != (expected.id if expected is not None else None):
        raise LedgerError(f"{ledger.path}: the active {role} CA changed while rotating; nothing changed, try again")


@dataclass(frozen=True)
class Rotation:
    """What a rotation made: the new CAs, the cross-certificates of a root rollover, and the names it retired."""

    issuing: CA
    root: CA | None = None
    cross_certificates: tuple[CrossCertificate, ...] = ()
    retired_cas: tuple[CA, ...] = ()

    @property
    def retired(self) -> tuple[str, ...]:
        return tuple(ca.name for ca in self.retired_cas)

    def to_json(self, names: dict[int, str] | None = None) -> Json:
        made = [self.issuing, *self.retired_cas, *([self.root] if self.root is not None else [])]
        known = {**(names or {}), **{ca.id: ca.name for ca in made}}
        data: Json = {"issuing": self.issuing.to_json(known), "retired": list(self.retired)}
        if self.root is not None:
            data["root"] = self.root.to_json(known)
            data["cross_certificates"] = [cross.to_json(known) for cross in self.cross_certificates]
        return data


# --- rotate intermediate --------------------------------------------------------------------------------------


def rotate_intermediate(
    store: "Store",
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    issuing_cn: str | None = None,
    key_type: str | None = None,
    days: int | None = None,
) -> Rotation:
    """Create the next issuing CA generation under the active root and make it the one that issues.

    The previous issuing CA is retired: still trusted, still publishing its CRL, no longer issuing.
    """
    ledger = store.require_ca()
    recover(store)  # a rotation killed before its commit left a key file: undo it before naming the generation
    root_ca = _require_active(ledger, CARole.ROOT)
    old = cas.active(ledger, CARole.ISSUING)
    # The newest generation, even if revoked, is what the next one follows: its name, key type, URLs and token.
    previous = old if old is not None else cas.latest(ledger, CARole.ISSUING)
    generation = _next_generation(ledger, CARole.ISSUING)
    name = f"issuing-{generation}"
    issuing_cn = issuing_cn or _derived_cn(previous, generation, "--issuing-cn")
    _check_new_cn(ledger, issuing_cn, "--issuing-cn")
    subject = ca_name(issuing_cn, _organization(previous if previous is not None else root_ca))
    spec = _new_key_spec(key_type, previous, DEFAULT_ISSUING_KEY)
    unlock = CASecrets.of(secrets)
    root = load_issuer(store, root_ca, unlock, now=now)  # proves the passphrase (or PIN) before a new key is made
    not_before, not_after = _validity_under(now, days, DEFAULT_ISSUING_DAYS, root.cert, "--days")
    reference = previous if previous is not None else root_ca

    with undone_on_failure() as keys:
        key = create_ca_key(store, name, spec, unlock, token=token_of(reference, unlock))
        keys.append(key)
        cert = ca_certificate_under(root.cert, root.key, subject, key.key.public_key(), not_before, not_after, 0,
                                    root_ca.crl_url)
        planned = new_ca(name, CARole.ISSUING, generation, root.id, cert, key, crl_base_of(reference),
                         previous.ocsp_url if previous is not None else None, now)
        with ledger.write():
            _unchanged(ledger, CARole.ISSUING, old)
            made = cas.insert(ledger, planned)
            if old is not None:
                cas.retire(ledger, old.id, made.id, now)
            key.save()
            events.record(ledger, now, "rotate-intermediate", {
                "issuing": made.subject, "issuing_fingerprint": made.fingerprint_sha256, "root": root_ca.name,
                "retired": old.name if old is not None else None, "key": key.key_ref,
            })
    return Rotation(issuing=made, retired_cas=(old,) if old is not None else ())


def _derived_cn(previous: CA | None, generation: int, option: str) -> str:
    """The default CN of a new generation, from the previous one's."""
    if previous is None:
        raise UsageError(f"{option}: required; there is no previous issuing CA to derive a name from")
    return next_generation_cn(common_name(previous), previous.generation, generation)


# --- rotate root ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rollover:
    """A root rollover being prepared: the CAs it starts from and the names and keys of the new generation."""

    old_root: CA
    old_issuing: CA | None
    previous_issuing: CA | None
    root_name: str
    issuing_name: str
    root_generation: int
    issuing_generation: int
    root_subject: "x509.Name"
    issuing_subject: "x509.Name"
    root_spec: KeySpec
    issuing_spec: KeySpec

    @property
    def retired(self) -> tuple[CA, ...]:
        return (self.old_root,) + ((self.old_issuing,) if self.old_issuing is not None else ())


@dataclass(frozen=True)
class _RolloverCertificates:
    root: "x509.Certificate"
    issuing: "x509.Certificate"
    new_by_old: "x509.Certificate"
    old_by_new: "x509.Certificate"


def rotate_root(
    store: "Store",
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    root_cn: str | None = None,
    issuing_cn: str | None = None,
    key_type: str | None = None,
    root_days: int = DEFAULT_ROOT_DAYS,
    issuing_days: int = DEFAULT_ISSUING_DAYS,
    cross_days: int | None = None,
) -> Rotation:
    """Roll the root over: a new root and a new issuing CA under it, plus cross-certificates both ways.

    - old root signs the new root's name and key: a peer trusting only the old root validates new leaves;
    - new root signs the old root's name and key: a peer trusting only the new root validates old leaves.

    Cross-certificates last until the old root expires (or ``cross_days``), never beyond either root. The old
    root and issuing CA are retired.
    """
    ledger = store.require_ca()
    recover(store)  # a rotation killed before its commit left key files: undo them before naming the generation
    plan = _plan_rollover(ledger, now, root_cn=root_cn, issuing_cn=issuing_cn, key_type=key_type,
                          root_days=root_days, issuing_days=issuing_days, cross_days=cross_days)
    unlock = CASecrets.of(secrets)
    old_root = load_issuer(store, plan.old_root, unlock, now=now)  # proves the secrets; signs the cross-certificate
    home = token_of(plan.old_root, unlock)
    with undone_on_failure() as keys:
        root_key = create_ca_key(store, plan.root_name, plan.root_spec, unlock, token=home)
        keys.append(root_key)
        issuing_key = create_ca_key(store, plan.issuing_name, plan.issuing_spec, unlock, token=home)
        keys.append(issuing_key)
        made = _rollover_certificates(plan, old_root, root_key, issuing_key, now, root_days, issuing_days,
                                      cross_days)
        with ledger.write():
            rotation = _record_rollover(ledger, plan, made, root_key, issuing_key, now)
            new_root = rotation.root
            assert new_root is not None  # a rollover always makes a root
            for key in keys:
                key.save()
            events.record(ledger, now, "rotate-root", {
                "root": new_root.subject, "root_fingerprint": new_root.fingerprint_sha256,
                "issuing": rotation.issuing.subject, "issuing_fingerprint": rotation.issuing.fingerprint_sha256,
                "retired": [ca.name for ca in plan.retired],
                "cross_certificates": [cross.fingerprint_sha256 for cross in rotation.cross_certificates],
                "keys": [key.key_ref for key in keys],
            })
    return rotation


def _plan_rollover(ledger: "Ledger", now: datetime, *, root_cn: str | None, issuing_cn: str | None,
                   key_type: str | None, root_days: int, issuing_days: int, cross_days: int | None) -> _Rollover:
    """Check the options against the ledger and name the new generation; nothing is made yet."""
    old_root = _require_active(ledger, CARole.ROOT)
    old_issuing = cas.active(ledger, CARole.ISSUING)
    previous_issuing = old_issuing if old_issuing is not None else cas.latest(ledger, CARole.ISSUING)
    if old_root.not_after <= now:
        raise UsageError(f"{old_root.name}: expired on {iso(old_root.not_after)}; a rollover needs the old root "
                         "still valid to cross-sign; start a new store with privca init")
    if not 1 <= issuing_days < root_days <= 36500:
        raise UsageError("--issuing-days and --root-days: need 1 <= issuing days < root days <= 36500")
    if cross_days is not None and not 1 <= cross_days <= 36500:
        raise UsageError("--cross-days: must be between 1 and 36500 days")
    root_generation = _next_generation(ledger, CARole.ROOT)
    issuing_generation = _next_generation(ledger, CARole.ISSUING)
    root_cn = root_cn or next_generation_cn(common_name(old_root), old_root.generation, root_generation)
    issuing_cn = issuing_cn or _derived_cn(previous_issuing, issuing_generation, "--issuing-cn")
    _check_new_cn(ledger, root_cn, "--root-cn")
    _check_new_cn(ledger, issuing_cn, "--issuing-cn", taken=(root_cn,))
    organization = _organization(old_root)
    return _Rollover(
        old_root=old_root, old_issuing=old_issuing, previous_issuing=previous_issuing,
        root_name=f"root-{root_generation}", issuing_name=f"issuing-{issuing_generation}",
        root_generation=root_generation, issuing_generation=issuing_generation,
        root_subject=ca_name(root_cn, organization), issuing_subject=ca_name(issuing_cn, organization),
        root_spec=_new_key_spec(key_type, old_root, DEFAULT_ROOT_KEY),
        issuing_spec=_new_key_spec(key_type, previous_issuing, DEFAULT_ISSUING_KEY),
    )


def _rollover_certificates(plan: _Rollover, old_root: Issuer, root_key: NewCAKey, issuing_key: NewCAKey,
                           now: datetime, root_days: int, issuing_days: int,
                           cross_days: int | None) -> _RolloverCertificates:
    """The new root, the issuing CA under it, and the two cross-certificates."""
    from privca.issuance.builder import validity

    root_cert = root_ca_certificate(plan.root_subject, root_key.key, *validity(now, root_days))
    new_root_crl = crl_url_for(crl_base_of(plan.old_root), plan.root_name)
    issuing_cert = ca_certificate_under(root_cert, root_key.key, plan.issuing_subject, issuing_key.key.public_key(),
                                        *validity(now, issuing_days), 0, new_root_crl)
    cross_start, cross_end = validity(now, cross_days or root_days)
    cross_end = min(cross_end, old_root.cert.not_valid_after_utc, root_cert.not_valid_after_utc)
    new_by_old = ca_certificate_under(old_root.cert, old_root.key, plan.root_subject, root_key.key.public_key(),
                                      cross_start, cross_end, None, plan.old_root.crl_url)
    old_by_new = ca_certificate_under(root_cert, root_key.key, old_root.cert.subject, old_root.cert.public_key(),
                                      cross_start, cross_end, None, new_root_crl)
    return _RolloverCertificates(root_cert, issuing_cert, new_by_old, old_by_new)


def _record_rollover(ledger: "Ledger", plan: _Rollover, made: _RolloverCertificates, root_key: NewCAKey,
                     issuing_key: NewCAKey, now: datetime) -> Rotation:
    """Inside the write transaction: the new CAs, the retired ones and the cross-certificates."""
    _unchanged(ledger, CARole.ROOT, plan.old_root)
    _unchanged(ledger, CARole.ISSUING, plan.old_issuing)
    crl_base = crl_base_of(plan.old_root)
    root = cas.insert(ledger, new_ca(plan.root_name, CARole.ROOT, plan.root_generation, None, made.root, root_key,
                                     crl_base, None, now))
    ocsp_url = plan.previous_issuing.ocsp_url if plan.previous_issuing is not None else None
    issuing = cas.insert(ledger, new_ca(plan.issuing_name, CARole.ISSUING, plan.issuing_generation, root.id,
                                        made.issuing, issuing_key, crl_base, ocsp_url, now))
    cas.retire(ledger, plan.old_root.id, root.id, now)
    if plan.old_issuing is not None:
        cas.retire(ledger, plan.old_issuing.id, issuing.id, now)
    made_crosses = (crosses.insert(ledger, _cross(made.new_by_old, plan.old_root.id, root.id, now)),
                    crosses.insert(ledger, _cross(made.old_by_new, root.id, plan.old_root.id, now)))
    return Rotation(issuing=issuing, root=root, cross_certificates=made_crosses, retired_cas=plan.retired)


def _cross(cert: "x509.Certificate", issuer_ca_id: int, subject_ca_id: int, now: datetime) -> CrossCertificate:
    return CrossCertificate(
        id=0, issuer_ca_id=issuer_ca_id, subject_ca_id=subject_ca_id, serial=serial_hex(cert.serial_number),
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        fingerprint_sha256=fingerprint(cert), created_at=now.replace(microsecond=0), pem=pem_of(cert),
    )


def write_rollover_chains(store: "Store", now: datetime) -> list[str]:
    """Beside the chain file of every valid certificate, the chain for peers that trust only another root
    generation (``expc.chain-root-2.pem``): its issuing CA and the cross-certificate, no self-signed root.

    Run after a root rollover, for the certificates issued before it (new ones get theirs when issued). The files
    are derived from the ledger and rewritten whole; a folder that is gone is skipped (``privca show SERIAL
    --chain-for ROOT`` prints the same chain). Returns the files written.
    """
    from pathlib import Path

    from privca.authority.signer import chain_file_for_root
    from privca.common.fsutil import atomic_write
    from privca.errors import OutputError
    from privca.ledger import certificates

    ledger = store.require_ca()
    by_issuer: dict[int, dict[str, str]] = {}
    written: list[str] = []
    for cert in certificates.query(ledger, now=now, statuses=("valid",)):
        if cert.issuer_id not in by_issuer:
            by_issuer[cert.issuer_id] = cas.chains_to_other_roots(ledger, cas.by_id(ledger, cert.issuer_id), now)
        if not cert.chain_path or not Path(cert.chain_path).parent.is_dir():
            continue
        for root_name, pem in by_issuer[cert.issuer_id].items():
            target = chain_file_for_root(Path(cert.chain_path), root_name)
            try:
                atomic_write(target, pem.encode(), overwrite=True)
            except OutputError:
                continue  # a read-only or odd folder: show --chain-for prints the chain
            written.append(str(target))
    return written


__all__ = ["Rotation", "common_name", "next_generation_cn", "rotate_intermediate", "rotate_root",
           "write_rollover_chains"]
