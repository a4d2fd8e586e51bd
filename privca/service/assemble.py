"""What ``privca serve`` answers: the one place where each protocol's routes are put into the app.

A protocol module exposes an ``install(app, ...)`` (or endpoints to hand to ``app.route``, or an ASGI app to
hand to ``app.mount``) and gets one line in ``build_app`` below; nothing else about the server changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from privca.errors import KeyMaterialError
from privca.keys.keystore import CASecrets
from privca.service import health, metrics
from privca.service.app import ServiceApp
from privca.service.live import LiveState
from privca.service.revocation_routes import RevocationRoutes

if TYPE_CHECKING:
    from privca.ledger.store import Store

Clock = Callable[[], datetime]


def build_app(store: "Store", secrets: CASecrets, clock: Clock) -> tuple[ServiceApp, LiveState]:
    """The service app for ``store``: CRLs, OCSP, /health and /metrics.

    The keys of the CAs that answer OCSP are unlocked here, once (``secrets`` are asked for only if there is such
    a CA); later CA generations are unlocked by the service when it first sees them.
    """
    store.require_ca()
    live = LiveState(store, secrets, clock)
    problems = live.current().key_problems
    if problems:  # at start-up a key that does not open is a mistake to fix now (a wrong passphrase)
        name, problem = next(iter(problems.items()))
        raise KeyMaterialError(problem if name in problem else f"CA {name}: {problem}")
    app = ServiceApp()
    count = metrics.ocsp_counter()
    health.install(app, live)
    metrics.install(app, live, count)
    RevocationRoutes(live, count).install(app)
    return app, live
