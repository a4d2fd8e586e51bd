"""SCEP (and EST) as routes of the service app: the protocol logic is in privca/enrollment, this only carries
HTTP requests to it and its answers back.

SCEP paths: ``/scep/<profile>``, the same followed by ``/pkiclient.exe`` or ``/cgi-bin/pkiclient.exe`` (IOS
appends them to its ``enrollment url``), and ``/cgi-bin/pkiclient.exe`` alone for the default profile (the path
IOS uses when the URL has none). Enrollment signs certificates and writes the ledger, so it runs in a worker
thread, never on the event loop that answers OCSP and CRL requests.

EST paths: ``/.well-known/est/<operation>`` (default profile) and ``/.well-known/est/<profile>/<operation>``. The
TLS client certificate reaches the endpoint through the ASGI TLS extension (``scope["extensions"]["tls"]``),
which privca's server fills in from the handshake (privca/service/server.py).
"""

from __future__ import annotations

import ssl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from privca.enrollment.est import EstRequest, EstService
from privca.enrollment.scep import ScepService
from privca.service.app import ServiceApp

SCEP_PATHS = ("/scep/{profile}", "/scep/{profile}/pkiclient.exe", "/scep/{profile}/cgi-bin/pkiclient.exe")
DEFAULT_PROFILE_PATH = "/cgi-bin/pkiclient.exe"
EST_PATHS = ("/.well-known/est/{operation}", "/.well-known/est/{label}/{operation}")


class EnrollmentRoutes:
    def __init__(self, scep: ScepService | None, default_profile: str | None, est: EstService | None = None) -> None:
        self.scep, self.default_profile, self.est = scep, default_profile, est

    def install(self, app: ServiceApp) -> None:
        if self.est is not None:
            for path in EST_PATHS:
                app.route(path, self.est_endpoint, methods=["GET", "POST"])
        if self.scep is None:
            return
        for path in SCEP_PATHS:
            app.route(path, self.scep_endpoint, methods=["GET", "POST"])
        if self.default_profile is not None:
            app.route(DEFAULT_PROFILE_PATH, self.scep_endpoint, methods=["GET", "POST"])

    async def scep_endpoint(self, request: Request) -> Response:
        assert self.scep is not None
        profile = request.path_params.get("profile") or self.default_profile
        body = await request.body() if request.method == "POST" else b""
        answer = await run_in_threadpool(self.scep.handle, request.method, str(profile), request.url.query, body)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                        headers=answer.headers)

    async def est_endpoint(self, request: Request) -> Response:
        assert self.est is not None
        body = await request.body() if request.method == "POST" else b""
        facts = EstRequest(request.method, request.url.scheme == "https", request.headers.get("authorization"),
                           client_certificate(request), body)
        answer = await run_in_threadpool(self.est.handle, str(request.path_params["operation"]),
                                         request.path_params.get("label"), facts)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                        headers=answer.headers)


def client_certificate(request: Request) -> bytes | None:
    """The DER of the TLS client certificate the handshake verified, if the client presented one."""
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None
