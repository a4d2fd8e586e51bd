"""What ``privca serve`` answers: the one place where each protocol's routes are put into the app.

A protocol module exposes an ``install(app)`` (or routes to hand to ``app.route``/``app.mount``) and is added to
``build_app`` below; nothing else about the server changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from privca.authority.ca import load_issuer
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger.db import iso
from privca.revocation.ocsp import Responder
from privca.service.app import ServiceApp
from privca.service.revocation_routes import RevocationRoutes, http_path

if TYPE_CHECKING:
    from privca.ledger.store import Store

Clock = Callable[[], datetime]


def build_app(store: "Store", secrets: "CASecrets | SecretSource", clock: Clock) -> tuple[ServiceApp, RevocationRoutes]:
    """The service app for ``store``, with its CRL and OCSP routes.

    The keys of the CAs that have an OCSP URL are unlocked here, once; ``secrets`` are only asked for (when it is
    a callable) if there is such a CA.
    """
    ledger = store.require_ca()
    now = clock()
    rows = [row for row in ledger.cas()
            if row["ocsp_url"] and row["status"] != "revoked" and row["not_after"] > iso(now)]
    responder, ocsp_paths = None, set()
    if rows:
        unlock = CASecrets.of(secrets)  # asks for the passphrase or PIN once, for all of them
        responder = Responder(store.ledger_path, [load_issuer(store, row, unlock) for row in rows])
        ocsp_paths = {http_path(row["ocsp_url"]).rstrip("/") or "/" for row in rows}
    app = ServiceApp()
    revocation = RevocationRoutes(store.ledger_path, responder, ocsp_paths, clock)
    revocation.install(app)
    return app, revocation
