"""CRLs and OCSP as routes of the service app.

- ``GET``/``HEAD`` on the path of a CA's CRL URL returns its latest CRL from the ledger as DER
  (``application/pkix-crl``, RFC 5280 4.2.1.13); the same path plus ``.pem`` returns it as PEM.
- ``POST`` of an OCSP request to the path of a CA's OCSP URL (or ``/``), or ``GET <path>/<base64 request>``
  (RFC 6960 appendix A.1), returns a signed OCSP response.

CRLs are read from the ledger on each request (cached by checksum), so a CRL signed by a later ``privca crl``
is served at once, without a restart.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from privca.errors import UsageError
from privca.ledger import cas, crls
from privca.ledger.db import Ledger
from privca.ledger.records import iso
from privca.revocation.ocsp import MAX_REQUEST_BYTES, Responder
from privca.revocation.publish import url_path
from privca.revocation.revoke import crl_pem
from privca.service.app import ServiceApp

Clock = Callable[[], datetime]
OCSP_RESPONSE_TYPE = "application/ocsp-response"


def http_path(url: str) -> str:
    """``/crl/issuing-1.crl`` for ``http://host/crl/issuing-1.crl``; ``/`` for a URL without a path."""
    path = urlsplit(url).path
    return "/" + str(url_path(url)) if path.strip("/") else "/"


class RevocationRoutes:
    """The CRL at a path, and OCSP answers; ``install`` puts them into the app."""

    def __init__(self, ledger_path: Path, responder: Responder | None, ocsp_paths: set[str], clock: Clock) -> None:
        self.ledger_path = ledger_path
        self.responder, self.ocsp_paths, self.clock = responder, ocsp_paths, clock
        self._cache: dict[int, tuple[str, bytes]] = {}

    def install(self, app: ServiceApp) -> None:
        # CRL and OCSP URLs are chosen by the administrator (any path), so one catch-all route answers them; the
        # app tries every fixed route and mount before it.
        app.route("/{path:path}", self.endpoint, methods=["GET", "HEAD", "POST"])

    def crl_routes(self) -> dict[str, tuple[int, bool]]:
        """``{http path: (CA id, as PEM)}`` for every CA with a CRL URL, read now: URLs may change while running."""
        ledger = Ledger(self.ledger_path)
        try:
            published = cas.with_crl_url(ledger)
        finally:
            ledger.close()
        routes: dict[str, tuple[int, bool]] = {}
        for ca_id, url in published:
            try:
                path = http_path(url)
            except UsageError:
                continue
            routes[path] = (ca_id, False)
            routes[path + ".pem"] = (ca_id, True)
        return routes

    def crl(self, ca_id: int) -> tuple[bytes, str, str] | None:
        """``(DER, sha256, thisUpdate)`` of the CA's latest CRL, or None if none was signed yet."""
        ledger = Ledger(self.ledger_path)
        try:
            meta = crls.fingerprint(ledger, ca_id)
            if meta is None:
                return None
            cached = self._cache.get(ca_id)
            if cached is None or cached[0] != meta[0]:
                crl = crls.latest(ledger, ca_id)
                if crl is None:
                    return None
                cached = (crl.sha256, crl.der)
                self._cache[ca_id] = cached
        finally:
            ledger.close()
        return cached[1], cached[0], iso(meta[1])

    def ocsp_request_from_path(self, path: str) -> bytes | None:
        """The DER request of an OCSP GET (``<OCSP path>/<url-encoded base64>``), or None if ``path`` is not one."""
        if self.responder is None:
            return None
        for prefix in sorted(self.ocsp_paths | {"/"}, key=len, reverse=True):
            base = prefix.rstrip("/") + "/"
            if path.startswith(base) and len(path) > len(base):
                text = unquote(path[len(base):])
                try:
                    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                except (binascii.Error, ValueError):
                    return b"" if prefix != "/" else None  # garbage at the OCSP path: answer malformedRequest
        return None

    def is_ocsp_post_path(self, path: str) -> bool:
        return self.responder is not None and (path == "/" or path.rstrip("/") in self.ocsp_paths)

    def ocsp(self, request_der: bytes) -> bytes:
        assert self.responder is not None
        return self.responder.respond(request_der, self.clock())

    async def endpoint(self, request: Request) -> Response:
        # The raw path: OCSP GET puts base64 (with / and +, maybe %-encoded) into it.
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        if request.method == "POST":
            return await self._post(request, path)
        route = self.crl_routes().get(path)
        if route is not None:
            ca_id, as_pem = route
            found = self.crl(ca_id)
            if found is None:
                return _plain(404, "no CRL signed yet; run: privca crl\n")
            der, sha256, this_update = found
            headers = {"ETag": f'"{sha256}"',
                       "Last-Modified": format_datetime(datetime.fromisoformat(this_update), usegmt=True)}
            if as_pem:
                return Response(crl_pem(der), media_type="application/x-pem-file", headers=headers)
            return Response(der, media_type="application/pkix-crl", headers=headers)
        ocsp_request = self.ocsp_request_from_path(path)
        if ocsp_request is not None and request.method == "GET":
            return Response(self.ocsp(ocsp_request), media_type=OCSP_RESPONSE_TYPE)
        return _plain(404, "not found\n")

    async def _post(self, request: Request, path: str) -> Response:
        if not self.is_ocsp_post_path(path):
            return _plain(404, "not found\n")
        if "content-length" not in request.headers:
            return _plain(411, "Content-Length required\n")
        body = await request.body()
        if not 0 < len(body) <= MAX_REQUEST_BYTES:
            return _plain(413, "an OCSP request is at most 16 KiB\n")
        return Response(self.ocsp(body), media_type=OCSP_RESPONSE_TYPE)


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
