"""SCEP (and EST) as routes of the service app: the protocol logic is in privca/enrollment, this only carries
HTTP requests to it and its answers back.

SCEP paths: ``/scep/<profile>``, the same followed by ``/pkiclient.exe`` or ``/cgi-bin/pkiclient.exe`` (IOS
appends them to its ``enrollment url``), and ``/cgi-bin/pkiclient.exe`` alone for the default profile (the path
IOS uses when the URL has none). Enrollment signs certificates and writes the ledger, so it runs in a worker
thread, never on the event loop that answers OCSP and CRL requests.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from privca.enrollment.scep import ScepService
from privca.service.app import ServiceApp

SCEP_PATHS = ("/scep/{profile}", "/scep/{profile}/pkiclient.exe", "/scep/{profile}/cgi-bin/pkiclient.exe")
DEFAULT_PROFILE_PATH = "/cgi-bin/pkiclient.exe"


class EnrollmentRoutes:
    def __init__(self, scep: ScepService | None, default_profile: str | None) -> None:
        self.scep, self.default_profile = scep, default_profile

    def install(self, app: ServiceApp) -> None:
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
