"""privca: a private certificate authority for Cisco collaboration estates.

Everything the command line does is a typed function here (docs/library.md):

    >>> from datetime import datetime, timezone
    >>> import privca
    >>> store = privca.Store("store")
    >>> issued = privca.issue(store, [Path("expc.csr")], passphrase, now=datetime.now(timezone.utc))

``import privca`` stays cheap (no cryptography, no SQLite), because every command line run imports this package
first: the functions live in ``privca.api``, which is imported on the first use of one of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privca.errors import (BackupError, CertificateInputError, CSRError, ExportError, IntegrityError, KeyMaterialError,
                           LedgerError, OutputError, PolicyViolation, PrivcaError, ProfileError, RevocationError,
                           StoreError, UsageError)
from privca.version import __version__

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ below provides the same names
    from privca.api import audit as audit
    from privca.api import AuditReport as AuditReport
    from privca.api import backup as backup
    from privca.api import backup_store as backup_store
    from privca.api import CA as CA
    from privca.api import CASecrets as CASecrets
    from privca.api import CertInfo as CertInfo
    from privca.api import check as check
    from privca.api import check_certificate as check_certificate
    from privca.api import CheckReport as CheckReport
    from privca.api import crl as crl
    from privca.api import crl_status as crl_status
    from privca.api import describe as describe
    from privca.api import export as export
    from privca.api import init_ca as init_ca
    from privca.api import issue as issue
    from privca.api import issue_crls as issue_crls
    from privca.api import Issued as Issued
    from privca.api import IssuedCertificate as IssuedCertificate
    from privca.api import list_certificates as list_certificates
    from privca.api import load_profile as load_profile
    from privca.api import load_profile_file as load_profile_file
    from privca.api import Passphrase as Passphrase
    from privca.api import plan as plan
    from privca.api import Profile as Profile
    from privca.api import publish as publish
    from privca.api import release as release
    from privca.api import renew as renew
    from privca.api import renew_expiring as renew_expiring
    from privca.api import RenewalResult as RenewalResult
    from privca.api import restore as restore
    from privca.api import restore_store as restore_store
    from privca.api import revoke as revoke
    from privca.api import rotate_intermediate as rotate_intermediate
    from privca.api import rotate_root as rotate_root
    from privca.api import Rotation as Rotation
    from privca.api import rotation_plan as rotation_plan
    from privca.api import Secret as Secret
    from privca.api import SecretSource as SecretSource
    from privca.api import service_app as service_app
    from privca.api import set_urls as set_urls
    from privca.api import show as show
    from privca.api import STATUSES as STATUSES
    from privca.api import Store as Store
    from privca.api import TokenChoice as TokenChoice
    from privca.api import unhold as unhold
    from privca.api import verify as verify
    from privca.api import verify_store as verify_store
    from privca.api import VerifyReport as VerifyReport

# The errors, the version, and every name of privca.api (tests/test_api.py keeps the two lists equal).
__all__ = [
    "BackupError", "CertificateInputError", "CSRError", "ExportError", "IntegrityError", "KeyMaterialError",
    "LedgerError", "OutputError", "PolicyViolation", "PrivcaError", "ProfileError", "RevocationError", "StoreError",
    "UsageError", "__version__", "audit", "AuditReport", "backup", "backup_store", "CA", "CASecrets", "CertInfo",
    "check", "check_certificate", "CheckReport", "crl", "crl_status", "describe", "export", "init_ca", "issue",
    "issue_crls", "Issued", "IssuedCertificate", "list_certificates", "load_profile", "load_profile_file",
    "Passphrase", "plan", "Profile", "publish", "release", "renew", "renew_expiring", "RenewalResult", "restore",
    "restore_store", "revoke", "rotate_intermediate", "rotate_root", "Rotation", "rotation_plan", "Secret",
    "SecretSource", "service_app", "set_urls", "show", "STATUSES", "Store", "TokenChoice", "unhold", "verify",
    "verify_store", "VerifyReport",
]


def __getattr__(name: str) -> object:
    """The API names, from privca.api on first use: importing it (cryptography, sqlite-utils, jinja2) takes about
    ten times as long as ``import privca``, which every command line run, even ``privca --help``, pays."""
    if name not in __all__:  # the errors and __version__ are already set: only privca.api's names get here
        raise AttributeError(f"module 'privca' has no attribute {name!r}")
    from privca import api

    value = getattr(api, name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value
