"""Running the service app on uvicorn: one listening socket, several worker processes, timeouts, graceful stop.

Why uvicorn (with httptools and uvloop) and not a WSGI server: measured on a 2-core machine with an endpoint
that signs like OCSP does (docs/performance.md), two uvicorn workers answered 1.6x the requests of two gunicorn
sync workers at 64 concurrent clients, and with 200 idle connections held open a request still took 12 ms on
uvicorn but got no answer at all from gunicorn's sync workers (each idle connection holds a worker; the threaded
worker holds a thread each). An event loop holds an idle connection for a few KiB.

The parent binds the socket (so ``--port 0`` can be printed before anything is served, and the backlog is ours),
unlocks the CA keys once, then forks the workers: they inherit the socket and the unlocked keys, and the
passphrase is never handed to another process. SIGTERM or SIGINT to the parent stops the workers gracefully:
they stop accepting, finish the requests in flight (up to ``graceful_timeout``) and exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

from privca.errors import UsageError
from privca.service.app import ASGIApp


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    # Kernel queue of connections not yet accepted: at 250 clients connecting at once a queue of 5 made the
    # kernel drop SYNs (seconds of retransmission); 1024 absorbs a burst while a worker catches up.
    backlog: int = 1024
    # A connection must deliver a whole request this long after it opens or after its last answer; it is closed
    # otherwise. This closes idle keep-alive connections, connections that never send, and slow senders alike.
    request_timeout: float = 10.0
    # Connections plus requests in progress per worker; past it new requests get 503 at once instead of queueing.
    limit_concurrency: int = 1000
    graceful_timeout: float = 10.0


def listen(settings: ServerSettings) -> socket.socket:
    """The bound, listening socket (not yet accepting).

    Raises:
        UsageError: the address cannot be listened on (in use, not ours, privileged port).
    """
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {settings.host}: not an address to listen on ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(settings.backlog)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {settings.host} --port {settings.port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def _protocol_class() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol plus a deadline for each whole request.

    uvicorn only times out a connection that is idle *after* an answer; one that opens and never sends, or sends
    a byte every few seconds, would stay forever. Here a timer runs from the moment a connection opens (or its
    last answer finishes) until a whole request has arrived.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineProtocol(HttpToolsProtocol):
        request_timeout = 10.0
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            # The ASGI TLS extension: the client certificate the handshake verified, for EST re-enrollment.
            ssl_object = self.transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                der = ssl_object.getpeercert(binary_form=True)
                chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
                self.scope["extensions"] = {"tls": {"client_cert_chain": chain,
                                                    "tls_version": ssl_object.version()}}

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return DeadlineProtocol


@dataclass(frozen=True)
class Secure:
    """A second listening socket that speaks TLS (``--https-port``), with its server context."""

    sock: socket.socket
    context: ssl.SSLContext


def _worker(app: ASGIApp, sock: socket.socket, settings: ServerSettings, secure: Secure | None = None) -> None:
    import uvicorn

    protocol = _protocol_class()
    protocol.request_timeout = settings.request_timeout  # type: ignore[attr-defined]

    def config(context: ssl.SSLContext | None) -> uvicorn.Config:
        made = uvicorn.Config(
            app, http=protocol, loop="auto", lifespan="off", access_log=False, log_config=None,
            server_header=False, backlog=settings.backlog, limit_concurrency=settings.limit_concurrency,
            timeout_keep_alive=max(1, int(settings.request_timeout)),
            timeout_graceful_shutdown=int(settings.graceful_timeout),
            # The context was built (and the key decrypted) by the parent; uvicorn only hands it to the socket.
            ssl_context_factory=(lambda _config, _default: context) if context is not None else None,
        )
        return made

    if secure is None:
        uvicorn.Server(config(None)).run(sockets=[sock])
        return

    class Linked(uvicorn.Server):
        """One of the two servers of a worker: a stop signal to either stops both."""

        partners: list["Linked"] = []

        def handle_exit(self, sig: int, frame: Any) -> None:
            for partner in self.partners:
                uvicorn.Server.handle_exit(partner, sig, frame)

    plain, tls = Linked(config(None)), Linked(config(secure.context))
    Linked.partners = [plain, tls]

    async def both() -> None:
        await asyncio.gather(plain.serve(sockets=[sock]), tls.serve(sockets=[secure.sock]))

    from uvicorn._compat import asyncio_run  # what uvicorn.Server.run uses (asyncio.run with a loop factory)

    asyncio_run(both(), loop_factory=plain.config.get_loop_factory())


def serve(app: ASGIApp, sock: socket.socket, settings: ServerSettings, secure: Secure | None = None) -> None:
    """Serve ``app`` on ``sock`` (and over TLS on ``secure``) until SIGTERM/SIGINT; with one worker in this
    process, else in forked workers."""
    if settings.workers <= 1:
        _worker(app, sock, settings, secure)
        return
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _worker(app, sock, settings, secure)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                code = 1
            finally:
                os._exit(code)
        children[pid] = number

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(settings.workers):
        spawn(number)
    # The parent keeps the socket open (it accepts nothing) to hand it to a replacement worker.
    deadline: float | None = None
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if stopping and deadline is None:
                deadline = time.monotonic() + settings.graceful_timeout + 5
            if deadline is not None and time.monotonic() > deadline:
                for child in list(children):
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.2)
            continue
        number = children.pop(pid)
        if not stopping:
            # A worker that died (a crash, the OOM killer) is replaced; the others kept serving meanwhile.
            print(f"privca serve: worker {number} exited ({status}); starting another", file=sys.stderr)
            spawn(number)
