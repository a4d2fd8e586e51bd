"""What ``privca serve`` answers: the one place where each protocol's routes are put into the app.

A protocol module exposes an ``install(app, ...)`` (or endpoints to hand to ``app.route``, or an ASGI app to
hand to ``app.mount``) and gets one line in ``build_app`` below; nothing else about the server changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class EnrollmentSettings:
    """What ``privca serve --scep`` / ``--est`` was asked for (docs/enrollment.md)."""

    scep: bool = False
    est: bool = False
    default_profile: str | None = None
    approval_queue: bool = False
    allow_sha1: bool = False
    allow_des: bool = False


def build_app(store: "Store", secrets: CASecrets, clock: Clock,
              enrollment: EnrollmentSettings | None = None) -> tuple[ServiceApp, LiveState]:
    """The service app for ``store``: CRLs, OCSP, /health and /metrics, and SCEP enrollment when asked for.

    The keys of the CAs that answer OCSP are unlocked here, once (``secrets`` are asked for only if there is such
    a CA, or enrollment is on: the issuing CA and the SCEP RA key); later CA generations are unlocked by the
    service when it first sees them.
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
    if enrollment is not None and (enrollment.scep or enrollment.est):
        from privca.enrollment.enroller import make_enroller
        from privca.enrollment.est import make_est_service
        from privca.enrollment.scep import make_scep_service
        from privca.service.enrollment_routes import EnrollmentRoutes

        # One enroller (one unlocked issuing CA) decides for both protocols.
        enroller = make_enroller(store.path, secrets, approval_queue=enrollment.approval_queue, clock=clock)
        scep = make_scep_service(store.path, secrets, allow_sha1=enrollment.allow_sha1,
                                 allow_des=enrollment.allow_des, clock=clock,
                                 enroller=enroller) if enrollment.scep else None
        est = make_est_service(store.path, enroller, enrollment.default_profile, clock) if enrollment.est else None
        EnrollmentRoutes(scep, enrollment.default_profile, est).install(app)
    RevocationRoutes(live, count).install(app)
    return app, live
