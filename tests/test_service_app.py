"""The service app (routes, mounts, limits, access log) and the server under it (timeouts, workers, SIGTERM).

The app is driven over real sockets: ``privca.service.server`` runs it on uvicorn in a child process.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from privca.service.app import ServiceApp
from privca.service.server import ServerSettings, listen, serve


async def hello(request: Request) -> Response:
    return PlainTextResponse(f"hello {request.method} {request.url.path}")


async def echo_length(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


async def sub_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app, as an enrollment protocol would mount."""
    body = f"mounted root={scope['root_path']} path={scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def catch_all(request: Request) -> Response:
    return PlainTextResponse("caught " + request.url.path)


def build(log_path: str) -> ServiceApp:
    app = ServiceApp(max_body=1024)
    app.route("/{anything:path}", catch_all)  # added first, still tried last
    app.route("/hello", hello, methods=["GET", "POST"])
    app.route("/echo", echo_length, methods=["POST"])
    app.route("/boom", boom)
    app.mount("/.well-known/est", sub_app)
    handler = logging.FileHandler(log_path)
    for name in ("privca.access", "privca.service"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    return app


def _run(log_path: str, sock: socket.socket, settings: ServerSettings) -> None:
    serve(build(log_path), sock, settings)


@pytest.fixture
def server(tmp_path: Any) -> Iterator[dict[str, Any]]:
    log_path = str(tmp_path / "access.log")
    settings = ServerSettings(port=0, workers=2, request_timeout=1.0, graceful_timeout=3)
    sock = listen(settings)
    process = multiprocessing.get_context("fork").Process(target=_run, args=(log_path, sock, settings))
    process.start()
    port = sock.getsockname()[1]
    sock.close()
    yield {"port": port, "process": process, "log": log_path}
    if process.is_alive():
        os.kill(process.pid or 0, signal.SIGTERM)
        process.join(15)


def http(port: int, raw: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def get(port: int, path: str, method: str = "GET", body: bytes = b"", extra: str = "") -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    reply = http(port, head.encode("latin-1") + b"\r\n" + body)
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1]


def test_routes_mounts_and_unknown_paths(server: dict[str, Any]) -> None:
    port = server["port"]
    assert get(port, "/hello") == (200, b"hello GET /hello")
    assert get(port, "/hello", "POST") == (200, b"hello POST /hello")
    assert get(port, "/.well-known/est/simpleenroll", "POST") == (
        200, b"mounted root=/.well-known/est path=/.well-known/est/simpleenroll")
    assert get(port, "/somewhere/else") == (200, b"caught /somewhere/else")  # the catch-all comes after the rest
    # Negative control: a bug is a 500 without its traceback.
    status, body = get(port, "/boom")
    assert status == 500 and b"Traceback" not in body and b"a bug" not in body


def test_unknown_paths_are_404_without_a_catch_all(tmp_path: Any) -> None:
    import asyncio

    app = ServiceApp()
    app.route("/hello", hello)
    app.route("/echo", echo_length, methods=["POST"])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for path, status in (("/health-nope", 404), ("/echo", 405), ("/hello", 200)):
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": [], "root_path": "", "scheme": "http", "server": ("t", 80), "client": ("c", 1)}
        asyncio.run(app(scope, receive, send))
        assert sent[0]["status"] == status


def test_body_limit(server: dict[str, Any]) -> None:
    port = server["port"]
    assert get(port, "/echo", "POST", b"x" * 1024) == (200, b"1024")
    assert get(port, "/echo", "POST", b"x" * 1025)[0] == 413
    # A chunked body has no Content-Length to check up front: it is cut off as it grows.
    chunks = b"".join(b"200\r\n" + b"y" * 512 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    reply = http(port, b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunks)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]


def test_access_log_is_json_with_control_characters_escaped(server: dict[str, Any]) -> None:
    port = server["port"]
    # A control character in a header is refused by the HTTP parser itself (400); in the path it is logged escaped.
    assert get(port, "/hello", extra="User-Agent: evil\x07agent\r\n")[0] == 400
    get(port, "/x%0d%0aFORGED%20200%1b[31m", extra="User-Agent: tab\tagent\r\n")
    time.sleep(0.5)
    lines = open(server["log"]).read().splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines  # no line was split or forged
    record = json.loads(lines[-1])
    assert record["path"] == "/x\r\nFORGED 200\x1b[31m" and record["status"] == 404  # "." stops at a newline
    assert "\\r\\n" in lines[-1] and "\\u001b" in lines[-1] and "\x1b" not in lines[-1]
    assert record["agent"] == "tab\tagent" and "\\t" in lines[-1]


def test_idle_and_slow_connections_are_closed_after_the_timeout(server: dict[str, Any]) -> None:
    port = server["port"]
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n")  # never finishes its headers
    started = time.monotonic()
    assert idle.recv(100) == b"" and slow.recv(100) == b""  # closed by the server
    assert 0.8 < time.monotonic() - started < 4
    # Negative control: a connection that sends a whole request in time gets its answer.
    assert get(port, "/hello")[0] == 200


def test_sigterm_finishes_and_exits(server: dict[str, Any]) -> None:
    process = server["process"]
    assert get(server["port"], "/hello")[0] == 200
    os.kill(process.pid, signal.SIGTERM)
    process.join(15)
    assert process.exitcode == 0
    with pytest.raises(OSError):
        get(server["port"], "/hello")


def test_listen_reports_a_busy_port() -> None:
    from privca.errors import UsageError

    first = listen(ServerSettings(port=0))
    try:
        with pytest.raises(UsageError, match="cannot listen there"):
            listen(ServerSettings(port=first.getsockname()[1]))
    finally:
        first.close()


def test_backlog_is_at_least_128() -> None:
    assert ServerSettings().backlog >= 128
