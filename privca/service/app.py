"""The one HTTP application ``privca serve`` runs (ASGI, on Starlette's router).

Protocols live in their own modules and plug in here with one call each:

    app = ServiceApp()
    app.route("/health", health_endpoint)                      # one path, GET and HEAD by default
    app.route("/ocsp", ocsp_post, methods=["POST"])
    app.mount("/.well-known/est", est_app)                     # any ASGI app under a path prefix

An endpoint is ``async def endpoint(request: starlette.requests.Request) -> starlette.responses.Response``;
a path may hold parameters (``/crl/{name}``, ``/ocsp/{request:path}``). This module knows no protocol: it only
adds what every route needs, in this order, outermost first:

- an access log: one JSON line per request on the ``privca.access`` logger (JSON escapes control characters,
  so a request path cannot forge or split log lines);
- a request body limit (``413`` for a larger ``Content-Length`` or a longer chunked body);
- a deadline for the whole request (``503`` if an endpoint takes longer);
- ``404`` for unknown paths, ``405`` for a wrong method, ``500`` (logged, never shown) for a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]

ACCESS_LOG = logging.getLogger("privca.access")
ERROR_LOG = logging.getLogger("privca.service")

# OCSP requests are ~100 bytes and enrollment requests (a CSR in PKCS#7) a few KiB: 64 KiB leaves room and keeps
# a client from making a worker buffer megabytes.
DEFAULT_MAX_BODY = 64 * 1024
# Signing one OCSP response takes about a millisecond; an endpoint still busy after this is stuck.
DEFAULT_HANDLER_TIMEOUT = 30.0


class ServiceApp:
    """The ASGI application: routes and mounts, wrapped in the access log, the body limit and the deadline."""

    def __init__(self, *, max_body: int = DEFAULT_MAX_BODY, handler_timeout: float = DEFAULT_HANDLER_TIMEOUT,
                 access_log: logging.Logger = ACCESS_LOG) -> None:
        self.max_body = max_body
        self.handler_timeout = handler_timeout
        self.access_log = access_log
        self._router = Router()
        self._paths: set[tuple[str, str]] = set()

    def route(self, path: str, endpoint: Endpoint, *, methods: Sequence[str] = ("GET",)) -> None:
        """Answer ``methods`` at ``path`` with ``endpoint`` (GET also answers HEAD).

        Raises:
            ValueError: the same path and method were routed before (two protocols claiming one URL).
        """
        for method in methods:
            key = (path, method.upper())
            if key in self._paths:
                raise ValueError(f"{method} {path}: already routed")
            self._paths.add(key)
        self._add(Route(path, endpoint, methods=list(methods)))

    def mount(self, prefix: str, app: ASGIApp) -> None:
        """Hand every request under ``prefix`` to ``app`` (its ``scope["path"]`` keeps the full path and
        ``scope["root_path"]`` the prefix, as Starlette's Mount does)."""
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"{prefix!r}: a mount prefix starts with / and does not end with one")
        self._add(Mount(prefix, app=app))

    def _add(self, route: BaseRoute) -> None:
        # Catch-all patterns ({name:path}) last, whatever the order of the calls: a protocol that serves
        # arbitrary paths (CRLs at the path of their URL) must not shadow /health or a mount added after it.
        self._router.routes.append(route)
        self._router.routes.sort(key=lambda item: ":path}" in getattr(item, "path", ""))

    @property
    def routes(self) -> list[BaseRoute]:
        return list(self._router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: none of privca's protocols uses them
            return
        started = time.perf_counter()
        sent: dict[str, int] = {"status": 0, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self._handle(scope, receive, counting_send)
        finally:
            self._log(scope, sent["status"], sent["bytes"], time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await _plain(send, 413, f"request body over {self.max_body} bytes\n")
            return
        try:
            await asyncio.wait_for(self._router(scope, _limited(receive, self.max_body), send), self.handler_timeout)
        except _BodyTooLarge:
            await _plain(send, 413, f"request body over {self.max_body} bytes\n")
        except asyncio.TimeoutError:
            ERROR_LOG.error("%s %s: no answer within %.0f s", scope.get("method"), _escaped(scope.get("path", "")),
                            self.handler_timeout)
            await _plain(send, 503, "the request took too long; try again\n")
        except Exception:
            # A bug: logged with its traceback for the operator, never sent to the client. Tracebacks here hold
            # no secrets: keys are objects, and passphrases are not kept after the keys are unlocked.
            ERROR_LOG.exception("%s %s failed", scope.get("method"), _escaped(scope.get("path", "")))
            await _plain(send, 500, "internal error; see the service log\n")

    def _log(self, scope: Scope, status: int, size: int, seconds: float) -> None:
        if not self.access_log.isEnabledFor(logging.INFO):
            return
        headers = dict(scope.get("headers") or [])
        client = scope.get("client") or ("", 0)
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "client": client[0],
            "method": scope.get("method", ""),
            "path": scope.get("path", ""),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": status,
            "bytes": size,
            "ms": round(seconds * 1000, 2),
            "agent": headers.get(b"user-agent", b"").decode("latin-1"),
        }
        # ensure_ascii: every control or non-ASCII character becomes a \\u escape, one request stays one line.
        self.access_log.info(json.dumps(record, ensure_ascii=True))


class _BodyTooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops a chunked body (no Content-Length) once it grows past ``limit``."""
    total = 0

    async def wrapped() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise _BodyTooLarge
        return message

    return wrapped


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _escaped(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)[1:-1]


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    try:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    except RuntimeError:
        pass  # the endpoint had already started its response: the server closes the connection


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
