"""``privca serve``: a small HTTP service for CRLs and OCSP (stdlib ``http.server``, one thread per request).

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
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from privca.authority.ca import load_issuer
from privca.errors import UsageError
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger.db import Ledger, iso
from privca.revocation.ocsp import MAX_REQUEST_BYTES, Responder
from privca.revocation.publish import url_path
from privca.revocation.revoke import crl_pem

if TYPE_CHECKING:
    from privca.ledger.store import Store

Clock = Callable[[], datetime]
OCSP_RESPONSE_TYPE = "application/ocsp-response"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def http_path(url: str) -> str:
    """``/crl/issuing-1.crl`` for ``http://host/crl/issuing-1.crl``; ``/`` for a URL without a path."""
    path = urlsplit(url).path
    return "/" + str(url_path(url)) if path.strip("/") else "/"


class RevocationService:
    """What the HTTP handler asks: the CRL at a path, and OCSP answers."""

    def __init__(self, store: "Store", responder: Responder | None, ocsp_paths: set[str], clock: Clock) -> None:
        self.ledger_path = store.ledger_path
        self.responder, self.ocsp_paths, self.clock = responder, ocsp_paths, clock
        self._cache: dict[int, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def crl_routes(self) -> dict[str, tuple[int, bool]]:
        """``{http path: (CA id, as PEM)}`` for every CA with a CRL URL, read now: URLs may change while running."""
        ledger = Ledger(self.ledger_path)
        try:
            rows = ledger.conn.execute("SELECT id, crl_url FROM cas WHERE crl_url IS NOT NULL").fetchall()
        finally:
            ledger.close()
        routes: dict[str, tuple[int, bool]] = {}
        for row in rows:
            try:
                path = http_path(row["crl_url"])
            except UsageError:
                continue
            routes[path] = (row["id"], False)
            routes[path + ".pem"] = (row["id"], True)
        return routes

    def crl(self, ca_id: int) -> tuple[bytes, str, str] | None:
        """``(DER, sha256, thisUpdate)`` of the CA's latest CRL, or None if none was signed yet."""
        ledger = Ledger(self.ledger_path)
        try:
            meta = ledger.conn.execute("SELECT sha256, this_update FROM crls WHERE ca_id = ?", (ca_id,)).fetchone()
            if meta is None:
                return None
            with self._lock:
                cached = self._cache.get(ca_id)
            if cached is None or cached[0] != meta["sha256"]:
                row = ledger.conn.execute("SELECT sha256, der FROM crls WHERE ca_id = ?", (ca_id,)).fetchone()
                cached = (row["sha256"], bytes(row["der"]))
                with self._lock:
                    self._cache[ca_id] = cached
        finally:
            ledger.close()
        return cached[1], cached[0], meta["this_update"]

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


class _Handler(BaseHTTPRequestHandler):
    service: RevocationService
    def version_string(self) -> str:
        return "privca"

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        route = self.service.crl_routes().get(path)
        if route is not None:
            ca_id, as_pem = route
            found = self.service.crl(ca_id)
            if found is None:
                self._send(404, b"no CRL signed yet; run: privca crl\n", "text/plain", head=head)
                return
            der, sha256, this_update = found
            modified = format_datetime(datetime.fromisoformat(this_update), usegmt=True)
            if as_pem:
                self._send(200, crl_pem(der), "application/x-pem-file", head=head, etag=sha256, modified=modified)
            else:
                self._send(200, der, "application/pkix-crl", head=head, etag=sha256, modified=modified)
            return
        request = self.service.ocsp_request_from_path(path)
        if request is not None and not head:
            self._send(200, self.service.ocsp(request), OCSP_RESPONSE_TYPE)
            return
        self._send(404, b"not found\n", "text/plain", head=head)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not self.service.is_ocsp_post_path(path):
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, b"Content-Length required\n", "text/plain")
            return
        if not 0 < length <= MAX_REQUEST_BYTES:
            self._send(413, b"an OCSP request is at most 16 KiB\n", "text/plain")
            return
        self._send(200, self.service.ocsp(self.rfile.read(length)), OCSP_RESPONSE_TYPE)

    def _send(self, code: int, body: bytes, content_type: str, *, head: bool = False, etag: str | None = None,
              modified: str | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", f'"{etag}"')
        if modified:
            self.send_header("Last-Modified", modified)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{iso(_utc_now())} {self.address_string()} {format % args}\n")


def make_server(
    store: "Store", secrets: "CASecrets | SecretSource", *, host: str = "127.0.0.1", port: int = 8080,
    clock: Clock = _utc_now,
) -> tuple[ThreadingHTTPServer, RevocationService]:
    """A ready (bound, not yet serving) HTTP server for the store's CRLs and OCSP.

    The keys of the CAs that have an OCSP URL are unlocked once, here; ``secrets`` are only asked for (when
    it is a callable) if there is such a CA. ``port`` 0 picks a free port (see ``server.server_address``).
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
    service = RevocationService(store, responder, ocsp_paths, clock)
    handler = type("Handler", (_Handler,), {"service": service})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    server.daemon_threads = True
    return server, service
