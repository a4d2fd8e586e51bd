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

from privca.errors import (BackupError, CertificateInputError, CSRError, ExportError, IntegrityError, KeyMaterialError,
                     LedgerError, OutputError, PolicyViolation, PrivcaError, ProfileError, RevocationError, StoreError,
                     UsageError)

from privca.version import __version__

_LAZY = {
    "Store": "privca.ledger.store",
    "Passphrase": "privca.keys.material",
    "CASecrets": "privca.keys.keystore",
    "TokenChoice": "privca.keys.keystore",
    "init_ca": "privca.authority.ca",
    "issue": "privca.authority.signer",
    "export": "privca.exporters",
    "load_profile": "privca.issuance.profiles",
    "load_profile_file": "privca.issuance.profiles",
    "revoke": "privca.revocation.revoke",
    "release": "privca.revocation.revoke",
    "issue_crls": "privca.revocation.revoke",
    "crl_status": "privca.revocation.revoke",
    "publish": "privca.revocation.publish",
    "set_urls": "privca.revocation.publish",
    "make_server": "privca.service.server",
    "check_certificate": "privca.inspect.check",
    "describe": "privca.inspect.certinfo",
    "verify_store": "privca.maintenance.verify",
    "backup_store": "privca.maintenance.backup",
    "restore_store": "privca.maintenance.backup",
}

__all__ = sorted([*_LAZY, "BackupError", "CertificateInputError", "CSRError", "ExportError", "IntegrityError",
                  "KeyMaterialError", "LedgerError", "OutputError", "PolicyViolation", "PrivcaError", "ProfileError",
                  "RevocationError", "StoreError", "UsageError", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'privca' has no attribute {name!r}")
