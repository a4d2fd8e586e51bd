"""The one JSON shape of a certificate, shared by ``issue --json``, ``list --json`` and ``show --json``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

RECORD_KEYS = ("serial", "profile", "subject", "sans", "eku", "not_before", "not_after", "cert_path", "chain_path",
               "fullchain_path")


def certificate_record(row: Any, *, with_status: bool = True, now: datetime | None = None,
                       ca_names: dict[int, str] | None = None) -> dict[str, Any]:
    """A ledger row as a plain dict with the documented keys (plus ``status`` and revocation facts).

    ``status`` is ``valid``, ``revoked`` or ``hold`` as recorded, and ``expired`` for a valid certificate past its
    notAfter at ``now``. ``issuer`` is the issuing CA's name (``issuing-1``) when ``ca_names`` is given.
    """
    record = {
        "serial": row["serial"],
        "profile": row["profile"],
        "subject": row["subject"],
        "sans": json.loads(row["sans"]),
        "eku": json.loads(row["eku"]),
        "not_before": row["not_before"],
        "not_after": row["not_after"],
        "cert_path": row["cert_path"],
        "chain_path": row["chain_path"],
        "fullchain_path": row["fullchain_path"],
    }
    if with_status:
        from privca.ledger.db import iso
        from privca.rules.validity import status_at

        record["status"] = status_at(row["status"], row["not_after"], iso(now)) if now is not None else row["status"]
        record["issuer"] = ca_names.get(int(row["issuer_id"]), row["issuer_id"]) if ca_names else row["issuer_id"]
        record["key_type"] = f"{row['key_type']}:{row['key_size']}"
        record["fingerprint_sha256"] = row["fingerprint_sha256"]
        if row["status"] != "valid":
            record["revoked_at"] = row["revoked_at"]
            record["revocation_reason"] = row["revocation_reason"]
    return record
