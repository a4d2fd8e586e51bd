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
from privca.ledger import cas
from privca.ledger.records import CAStatus
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
    answering = [ca for ca in cas.all_cas(ledger)
                 if ca.ocsp_url and ca.status is not CAStatus.REVOKED and ca.not_after > now]
    responder, ocsp_paths = None, set()
    if answering:
        unlock = CASecrets.of(secrets)  # asks for the passphrase or PIN once, for all of them
        responder = Responder(store.ledger_path, [load_issuer(store, ca, unlock) for ca in answering])
        ocsp_paths = {http_path(str(ca.ocsp_url)).rstrip("/") or "/" for ca in answering}
    app = ServiceApp()
    revocation = RevocationRoutes(store.ledger_path, responder, ocsp_paths, clock)
    revocation.install(app)
    return app, revocation
