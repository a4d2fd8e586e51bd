"""CRLs and OCSP as routes of the service app, answered from the live ledger (``privca.service.live``).

- ``GET``/``HEAD`` on the path of a CA's CRL URL returns its latest CRL as DER (``application/pkix-crl``,
  RFC 5280 4.2.1.13), the same path plus ``.pem`` as PEM; with ETag, Last-Modified (thisUpdate) and Cache-Control
  up to nextUpdate, and ``304`` for a matching ``If-None-Match``.
- ``POST`` of an OCSP request to the path of a CA's OCSP URL (or ``/``), or ``GET <path>/<base64 request>``
  (RFC 6960 appendix A.1), returns a signed OCSP response; GET answers carry the caching headers of RFC 5019
  section 6.2 (max-age up to nextUpdate, Last-Modified, Expires, ETag).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from privca.revocation.ocsp import MAX_REQUEST_BYTES
from privca.revocation.revoke import crl_pem
from privca.service.app import ServiceApp
from privca.service.live import LiveState, OcspAnswer

OCSP_RESPONSE_TYPE = "application/ocsp-response"
Counter = Callable[[OcspAnswer], None]


class RevocationRoutes:
    """The CRL at a path, and OCSP answers; ``install`` puts them into the app."""

    def __init__(self, live: LiveState, count: Counter | None = None) -> None:
        self.live = live
        self.count = count

    def install(self, app: ServiceApp) -> None:
        # CRL and OCSP URLs are chosen by the administrator (any path), so one catch-all route answers them; the
        # app tries every fixed route and mount before it.
        app.route("/{path:path}", self.endpoint, methods=["GET", "HEAD", "POST"])

    def ocsp_request_from_path(self, path: str, ocsp_paths: set[str]) -> bytes | None:
        """The DER request of an OCSP GET (``<OCSP path>/<url-encoded base64>``), or None if ``path`` is not one."""
        for prefix in sorted(ocsp_paths | {"/"}, key=len, reverse=True):
            base = prefix.rstrip("/") + "/"
            if path.startswith(base) and len(path) > len(base):
                text = unquote(path[len(base):])
                try:
                    der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                except (binascii.Error, ValueError):
                    der = b""
                if prefix == "/" and "/" not in ocsp_paths and not _is_ocsp_request(der):
                    return None  # any other path that is not a request at all: 404, not an OCSP error
                return der  # garbage at an OCSP path gets an OCSP malformedRequest
        return None

    async def endpoint(self, request: Request) -> Response:
        # The raw path: OCSP GET puts base64 (with / and +, maybe %-encoded) into it.
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        snapshot = self.live.current()
        if request.method == "POST":
            if not snapshot.ocsp_paths or not (path == "/" or path.rstrip("/") in snapshot.ocsp_paths):
                return _plain(404, "not found\n")
            if "content-length" not in request.headers:
                return _plain(411, "Content-Length required\n")
            body = await request.body()
            if len(body) > MAX_REQUEST_BYTES:
                return _plain(413, "an OCSP request is at most 16 KiB\n")
            # An empty body is a malformed request like any other garbage: the OCSP client gets an OCSP answer.
            return Response(self._ocsp(body).der, media_type=OCSP_RESPONSE_TYPE)
        route = snapshot.crl_routes.get(path)
        if route is not None:
            return self._crl(request, *route)
        if snapshot.ocsp_paths and request.method == "GET":
            der = self.ocsp_request_from_path(path, snapshot.ocsp_paths)
            if der is not None:
                answer = self._ocsp(der)
                return Response(answer.der, media_type=OCSP_RESPONSE_TYPE, headers=_rfc5019_headers(answer, self.live.clock()))
        return _plain(404, "not found\n")

    def _ocsp(self, der: bytes) -> OcspAnswer:
        answer = self.live.ocsp(der)
        if self.count is not None:
            self.count(answer)
        return answer

    def _crl(self, request: Request, ca_id: int, as_pem: bool) -> Response:
        crl = self.live.crl(ca_id)
        if crl is None:
            return _plain(404, "no CRL signed yet; run: privca crl\n")
        now = self.live.clock()
        headers = {
            "ETag": f'"{crl.sha256[:32]}{"p" if as_pem else "d"}"',
            "Last-Modified": _http_date(crl.this_update),
            "Expires": _http_date(crl.next_update),
            # Caches may keep it until nextUpdate, no longer: a newer CRL may come any time before that, and peers
            # that fetch again after nextUpdate must get the new one.
            "Cache-Control": f"public, max-age={max(0, int((crl.next_update - now).total_seconds()))}, "
                             "no-transform, must-revalidate",
        }
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        if as_pem:
            return Response(crl_pem(crl.der), media_type="application/x-pem-file", headers=headers)
        return Response(crl.der, media_type="application/pkix-crl", headers=headers)


def _is_ocsp_request(der: bytes) -> bool:
    from cryptography.x509 import ocsp

    try:
        ocsp.load_der_ocsp_request(der)
    except (ValueError, TypeError, NotImplementedError):
        return False
    return True


def _rfc5019_headers(answer: OcspAnswer, now: datetime) -> dict[str, str]:
    """RFC 5019 6.2: let HTTP caches keep a signed answer until its nextUpdate, never an unsigned error."""
    if answer.this_update is None or answer.next_update is None:
        return {"Cache-Control": "no-store"}
    max_age = max(0, int((answer.next_update - max(now, answer.this_update)).total_seconds()))
    return {
        "Last-Modified": _http_date(answer.this_update),
        "Expires": _http_date(answer.next_update),
        "ETag": '"' + hashlib.sha1(answer.der).hexdigest() + '"',  # RFC 5019 suggests the response's SHA-1
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
    }


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
