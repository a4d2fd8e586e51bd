"""privca: a private certificate authority for Cisco collaboration estates.

Everything the command line does is a function here. Names are imported on first use so that ``import privca``
stays cheap.

    >>> from datetime import datetime, timezone
    >>> import privca
    >>> store = privca.Store("store")
    >>> records = privca.issue(store, [Path("expc.csr")], passphrase, now=datetime.now(timezone.utc))
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import (BackupError, CertificateInputError, CSRError, ExportError, IntegrityError, KeyMaterialError,
                     LedgerError, OutputError, PolicyViolation, PrivcaError, ProfileError, RevocationError, StoreError,
                     UsageError)

__version__ = "0.1.0"

_LAZY = {
    "Store": "privca.store",
    "Passphrase": "privca.keys",
    "CASecrets": "privca.keystore",
    "TokenChoice": "privca.keystore",
    "init_ca": "privca.ca",
    "issue": "privca.signer",
    "export": "privca.exporters",
    "load_profile": "privca.profiles",
    "load_profile_file": "privca.profiles",
    "certificate_record": "privca.records",
    "revoke": "privca.revocation",
    "release": "privca.revocation",
    "issue_crls": "privca.revocation",
    "crl_status": "privca.revocation",
    "publish": "privca.publish",
    "set_urls": "privca.publish",
    "make_server": "privca.server",
    "check_certificate": "privca.check",
    "describe": "privca.certinfo",
    "verify_store": "privca.verify",
    "backup_store": "privca.backup",
    "restore_store": "privca.backup",
}

__all__ = sorted([*_LAZY, "BackupError", "CertificateInputError", "CSRError", "ExportError", "IntegrityError",
                  "KeyMaterialError", "LedgerError", "OutputError", "PolicyViolation", "PrivcaError", "ProfileError",
                  "RevocationError", "StoreError", "UsageError", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'privca' has no attribute {name!r}")
