"""The public API: every operation of the command line as a typed function, re-exported by ``privca``.

Each name is defined where its capability lives (``privca.authority.signer.issue``...); the few operations that
were only reachable through the command line (``list_certificates``, ``show``, ``plan``, ``backup``, ``restore``,
``verify``) get a function here. Secrets (the CA passphrase, a token PIN, a backup passphrase) are accepted as
``str``, ``bytes`` or ``Passphrase``. ``docs/library.md`` shows it at work.

This module imports cryptography and the ledger; ``import privca`` stays cheap because ``privca`` loads this
module only when one of its names is first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from privca.authority.ca import init_ca
from privca.authority.rotation import Rotation, rotate_intermediate, rotate_root
from privca.authority.signer import Issued, issue
from privca.exporters import export
from privca.inspect.audit import AuditReport, audit
from privca.inspect.certinfo import CertInfo, describe
from privca.inspect.check import CheckReport, check_certificate
from privca.issuance.profiles import Profile, load_profile, load_profile_file
from privca.keys.keystore import CASecrets, SecretSource, TokenChoice
from privca.keys.material import Passphrase, Secret, as_passphrase
from privca.ledger import certificates
from privca.ledger.records import CA, IssuedCertificate
from privca.ledger.store import Store
from privca.lifecycle.plan import DEFAULT_HORIZON_DAYS, rotation_plan
from privca.lifecycle.renewal import RenewalResult, renew, renew_expiring
from privca.maintenance.backup import backup_store, restore_store
from privca.maintenance.verify import Report as VerifyReport
from privca.maintenance.verify import verify_store
from privca.revocation.publish import publish, set_urls
from privca.revocation.revoke import crl_status, issue_crls, release, revoke
from privca.service.assemble import build_app as service_app

STATUSES = ("valid", "expired", "revoked", "hold")

# ``privca crl`` and ``privca unhold`` under the names the command line uses.
crl = issue_crls
unhold = release
check = check_certificate


def list_certificates(store: Store, *, now: datetime, statuses: Sequence[str] = (),
                      expiring_within_days: int | None = None, profile: str | None = None
                      ) -> list[IssuedCertificate]:
    """``privca list``: the issued certificates matching every filter, soonest expiry first.

    ``statuses`` holds any of ``valid``, ``expired``, ``revoked``, ``hold``; ``shown_status(now)`` of a ``valid``
    certificate past its notAfter is ``expired``. ``to_json(now=now)`` gives the ``--json`` shape.
    """
    from privca.errors import UsageError

    for status in statuses:
        if status not in STATUSES:
            raise UsageError(f"status {status!r}: choose from {', '.join(STATUSES)}")
    return list(certificates.query(store.require_ca(), now=now, statuses=statuses,
                                   expiring_within_days=expiring_within_days, profile=profile))


def show(store: Store, serial: str) -> IssuedCertificate:
    """``privca show``: one certificate by its serial (hex, with or without colons, or a unique prefix of 8+
    digits)."""
    ledger = store.require_ca()
    return certificates.by_serial(ledger, certificates.resolve_serial(ledger, serial))


def plan(store: Store, *, now: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> dict[str, Any]:
    """``privca plan --json``: what expires when, what to renew or rotate by when, which bundles go where."""
    return rotation_plan(store, now, horizon_days=horizon_days)


def verify(store: Store, *, passphrase: CASecrets | SecretSource | None = None, skip: Sequence[str] = (),
           repair: bool = False) -> VerifyReport:
    """``privca verify``: is the store whole? ``passphrase`` (or ``CASecrets`` with a token PIN) also checks that
    every CA key opens; None skips that check."""
    secrets = None if passphrase is None else CASecrets.of(passphrase)
    return verify_store(store, passphrase=secrets, skip=list(skip), repair=repair)


def backup(store: Store, target: Path, passphrase: Secret, *, now: datetime, force: bool = False
           ) -> dict[str, Any]:
    """``privca backup``: an encrypted archive of the store (ledger, CA keys, profiles) at ``target``."""
    return backup_store(store, target, as_passphrase(passphrase), now=now, force=force)


def restore(archive: Path, store: Store, passphrase: Secret, *, now: datetime) -> dict[str, Any]:
    """``privca restore``: unpack ``archive`` into ``store`` (a missing or empty folder), checked before use."""
    return restore_store(archive, store, as_passphrase(passphrase), now=now)


__all__ = [
    "audit", "AuditReport", "backup", "backup_store", "CA", "CASecrets", "CertInfo", "check", "check_certificate",
    "CheckReport", "crl", "crl_status", "describe", "export", "init_ca", "issue", "issue_crls", "Issued",
    "IssuedCertificate", "list_certificates", "load_profile", "load_profile_file", "Passphrase", "plan", "Profile",
    "publish", "release", "renew", "renew_expiring", "RenewalResult", "restore", "restore_store", "revoke",
    "rotate_intermediate", "rotate_root", "Rotation", "rotation_plan", "Secret", "SecretSource", "service_app",
    "set_urls", "show", "STATUSES", "Store", "TokenChoice", "unhold", "verify", "verify_store", "VerifyReport",
]
