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
from typing import TYPE_CHECKING, Any

from privca.authority.ca import (DEFAULT_ISSUING_DAYS, DEFAULT_ISSUING_KEY, DEFAULT_ROOT_DAYS, DEFAULT_ROOT_KEY,
                 ca_certificate_under, ca_name, ca_row, crl_base_of, crl_url_for, fingerprint, certificate_of,
                 load_issuer, pem_of, root_ca_certificate, serial_hex, undone_on_failure)
from privca.errors import LedgerError, StoreError, UsageError
from privca.ledger.journal import recover
from privca.keys.material import CA_KEY_TYPES, KeySpec
from privca.keys.keystore import CASecrets, SecretSource, create_ca_key, token_of
from privca.ledger.db import iso

if TYPE_CHECKING:
    import sqlite3

    from cryptography import x509

    from privca.ledger.db import Ledger
    from privca.ledger.store import Store

_TRAILING_NUMBER = re.compile(r"^(.*?(?:\s|-|\sG))(\d+)$")


# --- names ----------------------------------------------------------------------------------------------------


def common_name(row: "sqlite3.Row") -> str:
    """The CN of a CA in the ledger."""
    from privca.common.names import common_name as cn_of

    return cn_of(certificate_of(row).subject)


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
    for existing in [common_name(row) for row in ledger.cas()] + list(taken):
        if existing.strip().casefold() == wanted:
            raise UsageError(
                f"{option} {cn!r}: a CA generation already has this name; every generation needs a distinct CN "
                "(CUCM replaces a trust certificate with the same subject, Expressway stops at the first match)"
            )


def _organization(row: "sqlite3.Row") -> str | None:
    from cryptography.x509.oid import NameOID

    values = certificate_of(row).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else None


def _next_generation(ledger: "Ledger", role: str) -> int:
    return max((int(row["generation"]) for row in ledger.cas() if row["role"] == role), default=0) + 1


def _new_key_spec(key_type: str | None, previous: "sqlite3.Row | None", fallback: str) -> KeySpec:
    return KeySpec.parse(key_type or (previous["key_type"] if previous is not None else fallback), CA_KEY_TYPES)


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


def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A CA row as callers show it: without the PEM body."""
    return {key: value for key, value in row.items() if key != "pem"}


def _require_active(ledger: "Ledger", role: str) -> "sqlite3.Row":
    row = ledger.active_ca(role)
    if row is None:
        raise StoreError(f"{ledger.path.parent}: no active {role} CA; privca rotate root creates a new hierarchy")
    return row


def _unchanged(ledger: "Ledger", role: str, expected: "sqlite3.Row | None") -> None:
    """Inside the write transaction: the active CA is still the one this rotation started from."""
    current = ledger.active_ca(role)
    if (current["id"] if current else None) != (expected["id"] if expected is not None else None):
        raise LedgerError(f"{ledger.path}: the active {role} CA changed while rotating; nothing changed, try again")


# --- rotate intermediate --------------------------------------------------------------------------------------


def rotate_intermediate(
    store: "Store",
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    issuing_cn: str | None = None,
    key_type: str | None = None,
    days: int | None = None,
) -> dict[str, Any]:
    """Create the next issuing CA generation under the active root and make it the one that issues.

    The previous issuing CA is retired: still trusted, still publishing its CRL, no longer issuing. Returns
    ``{"issuing": <new CA>, "retired": [<names>]}``.
    """
    ledger = store.require_ca()
    recover(store)  # a rotation killed before its commit left a key file: undo it before naming the generation
    root_row = _require_active(ledger, "root")
    old = ledger.active_ca("issuing")
    # The newest generation, even if revoked, is what the next one follows: its name, key type, URLs and token.
    previous = old if old is not None else ledger.latest_ca("issuing")
    generation = _next_generation(ledger, "issuing")
    name = f"issuing-{generation}"
    if issuing_cn is None:
        if previous is None:
            raise UsageError("--issuing-cn: required; there is no previous issuing CA to derive a name from")
        issuing_cn = next_generation_cn(common_name(previous), int(previous["generation"]), generation)
    _check_new_cn(ledger, issuing_cn, "--issuing-cn")
    subject = ca_name(issuing_cn, _organization(previous if previous is not None else root_row))
    spec = _new_key_spec(key_type, previous, DEFAULT_ISSUING_KEY)
    unlock = CASecrets.of(secrets)
    root = load_issuer(store, root_row, unlock)  # proves the passphrase (or PIN) before a new key is made
    not_before, not_after = _validity_under(now, days, DEFAULT_ISSUING_DAYS, root.cert, "--days")
    reference = previous if previous is not None else root_row

    with undone_on_failure() as keys:
        key = create_ca_key(store, name, spec, unlock, token=token_of(reference, unlock))
        keys.append(key)
        cert = ca_certificate_under(root.cert, root.key, subject, key.key.public_key(), not_before, not_after, 0,
                                    root_row["crl_url"])
        row = ca_row(name, "issuing", generation, root.id, cert, key, crl_base_of(reference),
                     previous["ocsp_url"] if previous is not None else None, now)
        with ledger.write():
            _unchanged(ledger, "issuing", old)
            new_id = ledger.insert_ca(row)
            if old is not None:
                ledger.retire_ca(old["id"], new_id, now)
            key.save()
            ledger.record_event(now, "rotate-intermediate", {
                "issuing": row["subject"], "issuing_fingerprint": row["fingerprint_sha256"],
                "root": root_row["name"], "retired": old["name"] if old is not None else None,
                "key": key.key_ref,
            })
    return {"issuing": _public_row(row), "retired": [old["name"]] if old is not None else []}


# --- rotate root ----------------------------------------------------------------------------------------------


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
) -> dict[str, Any]:
    """Roll the root over: a new root and a new issuing CA under it, plus cross-certificates both ways.

    - old root signs the new root's name and key: a peer trusting only the old root validates new leaves;
    - new root signs the old root's name and key: a peer trusting only the new root validates old leaves.

    Cross-certificates last until the old root expires (or ``cross_days``), never beyond either root. The old
    root and issuing CA are retired. Returns the new CAs, the cross-certificates and the retired names.
    """
    from privca.issuance.builder import validity

    ledger = store.require_ca()
    recover(store)  # a rotation killed before its commit left key files: undo them before naming the generation
    old_root_row = _require_active(ledger, "root")
    old_issuing = ledger.active_ca("issuing")
    previous_issuing = old_issuing if old_issuing is not None else ledger.latest_ca("issuing")
    if old_root_row["not_after"] <= iso(now):
        raise UsageError(f"{old_root_row['name']}: expired on {old_root_row['not_after']}; a rollover needs the old "
                         "root still valid to cross-sign; start a new store with privca init")
    if not 1 <= issuing_days < root_days <= 36500:
        raise UsageError("--issuing-days and --root-days: need 1 <= issuing days < root days <= 36500")
    if cross_days is not None and not 1 <= cross_days <= 36500:
        raise UsageError("--cross-days: must be between 1 and 36500 days")
    root_generation = _next_generation(ledger, "root")
    issuing_generation = _next_generation(ledger, "issuing")
    root_name, issuing_name = f"root-{root_generation}", f"issuing-{issuing_generation}"
    root_cn = root_cn or next_generation_cn(common_name(old_root_row), int(old_root_row["generation"]),
                                            root_generation)
    if issuing_cn is None:
        if previous_issuing is None:
            raise UsageError("--issuing-cn: required; there is no previous issuing CA to derive a name from")
        issuing_cn = next_generation_cn(common_name(previous_issuing), int(previous_issuing["generation"]),
                                        issuing_generation)
    _check_new_cn(ledger, root_cn, "--root-cn")
    _check_new_cn(ledger, issuing_cn, "--issuing-cn", taken=(root_cn,))
    organization = _organization(old_root_row)
    root_subject, issuing_subject = ca_name(root_cn, organization), ca_name(issuing_cn, organization)
    root_spec = _new_key_spec(key_type, old_root_row, DEFAULT_ROOT_KEY)
    issuing_spec = _new_key_spec(key_type, previous_issuing, DEFAULT_ISSUING_KEY)
    unlock = CASecrets.of(secrets)
    old_root = load_issuer(store, old_root_row, unlock)  # proves the secrets; signs the cross-certificate
    home = token_of(old_root_row, unlock)

    with undone_on_failure() as keys:
        root_key = create_ca_key(store, root_name, root_spec, unlock, token=home)
        keys.append(root_key)
        issuing_key = create_ca_key(store, issuing_name, issuing_spec, unlock, token=home)
        keys.append(issuing_key)
        root_cert = root_ca_certificate(root_subject, root_key.key, *validity(now, root_days))
        crl_base = crl_base_of(old_root_row)
        new_root_crl = crl_url_for(crl_base, root_name)
        issuing_cert = ca_certificate_under(root_cert, root_key.key, issuing_subject, issuing_key.key.public_key(),
                                            *validity(now, issuing_days), 0, new_root_crl)
        cross_start, cross_end = validity(now, cross_days or root_days)
        cross_end = min(cross_end, old_root.cert.not_valid_after_utc, root_cert.not_valid_after_utc)
        new_by_old = ca_certificate_under(old_root.cert, old_root.key, root_subject, root_key.key.public_key(),
                                          cross_start, cross_end, None, old_root_row["crl_url"])
        old_by_new = ca_certificate_under(root_cert, root_key.key, old_root.cert.subject, old_root.cert.public_key(),
                                          cross_start, cross_end, None, new_root_crl)

        root_row = ca_row(root_name, "root", root_generation, None, root_cert, root_key, crl_base, None, now)
        with ledger.write():
            _unchanged(ledger, "root", old_root_row)
            _unchanged(ledger, "issuing", old_issuing)
            root_id = ledger.insert_ca(root_row)
            issuing_row = ca_row(issuing_name, "issuing", issuing_generation, root_id, issuing_cert, issuing_key,
                                 crl_base, previous_issuing["ocsp_url"] if previous_issuing is not None else None,
                                 now)
            issuing_id = ledger.insert_ca(issuing_row)
            ledger.retire_ca(old_root_row["id"], root_id, now)
            if old_issuing is not None:
                ledger.retire_ca(old_issuing["id"], issuing_id, now)
            crosses = [_cross_row(new_by_old, old_root_row["id"], root_id, now),
                       _cross_row(old_by_new, root_id, old_root_row["id"], now)]
            for cross in crosses:
                ledger.insert_cross_certificate(cross)
            for key in keys:
                key.save()
            ledger.record_event(now, "rotate-root", {
                "root": root_row["subject"], "root_fingerprint": root_row["fingerprint_sha256"],
                "issuing": issuing_row["subject"], "issuing_fingerprint": issuing_row["fingerprint_sha256"],
                "retired": [old_root_row["name"]] + ([old_issuing["name"]] if old_issuing is not None else []),
                "cross_certificates": [cross["fingerprint_sha256"] for cross in crosses],
                "keys": [key.key_ref for key in keys],
            })
    return {
        "root": _public_row(root_row),
        "issuing": _public_row(issuing_row),
        "cross_certificates": [_public_row(cross) for cross in crosses],
        "retired": [old_root_row["name"]] + ([old_issuing["name"]] if old_issuing is not None else []),
    }


def _cross_row(cert: "x509.Certificate", issuer_ca_id: int, subject_ca_id: int, now: datetime) -> dict[str, Any]:
    return {
        "issuer_ca_id": issuer_ca_id,
        "subject_ca_id": subject_ca_id,
        "serial": serial_hex(cert.serial_number),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "fingerprint_sha256": fingerprint(cert),
        "created_at": iso(now),
        "pem": pem_of(cert),
    }


# --- what is still trusted ------------------------------------------------------------------------------------


def needed_until(ledger: "Ledger") -> dict[int, str]:
    """For every CA: until when peers must trust it and it must publish its CRL (an ISO time).

    An active CA is needed until it expires. A retired CA is needed until the last certificate it signed expires:
    its leaves, the CA certificates under it (as long as those CAs are needed) and its cross-certificates. A
    revoked CA, or a retired one that signed nothing, is not needed at all (empty string).
    """
    rows = ledger.cas()
    children: dict[int, list["sqlite3.Row"]] = {}
    for row in rows:
        if row["parent_id"] is not None:
            children.setdefault(int(row["parent_id"]), []).append(row)
    found: dict[int, str] = {}

    def until(row: "sqlite3.Row") -> str:
        ca_id = int(row["id"])
        if ca_id not in found:
            if row["status"] == "revoked":
                found[ca_id] = ""
            elif row["status"] == "active":
                found[ca_id] = row["not_after"]
            else:
                signed = [ledger.last_expiry_signed_by(ca_id)] + [until(child) for child in children.get(ca_id, [])]
                latest = max((moment for moment in signed if moment), default="")
                found[ca_id] = min(latest, row["not_after"])  # "" when it signed nothing: not needed any more
        return found[ca_id]

    for row in rows:
        until(row)
    return found


def trusted_ca_rows(ledger: "Ledger", now: datetime) -> list["sqlite3.Row"]:
    """Every CA generation peers must still trust at ``now``: roots first, then issuing CAs, oldest first.

    Trust bundles carry all of them, so that certificates from a retired generation keep validating while the
    new one takes over.
    """
    stamp = iso(now)
    until = needed_until(ledger)
    rows = [row for row in ledger.cas() if until[int(row["id"])] >= stamp]
    return sorted(rows, key=lambda row: (row["role"] != "root", int(row["generation"])))


def cross_certificates(ledger: "Ledger", now: datetime | None = None) -> list["sqlite3.Row"]:
    """The cross-certificates between root generations (unexpired at ``now`` when given), oldest first.

    Each row has ``issuer_ca_id`` (the root that signed it), ``subject_ca_id`` (the root whose name and key it
    carries) and ``pem``. ``privca export pem`` adds them after the CA certificates.
    """
    rows = ledger.cross_certificates()
    if now is None:
        return rows
    stamp = iso(now)
    return [row for row in rows if row["not_before"] <= stamp <= row["not_after"]]


__all__ = [
    "common_name", "cross_certificates", "needed_until", "next_generation_cn",
    "rotate_intermediate", "rotate_root", "trusted_ca_rows",
]
