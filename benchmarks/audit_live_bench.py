"""Benchmark: `privca audit` of a whole estate of live endpoints, against the sequential probe (`--concurrency 1`,
one endpoint after another, as privca did before) and against a shell loop of `openssl s_client`, in one run.

The estate is 200 loopback TLS endpoints of which 20 never answer: they accept the connection and never complete
the handshake (a firewall that drops after SYN-ACK, a hung appliance). Every contender waits `--timeout 5` for
those. The 180 others serve a leaf and its issuing CA. Goal: privca under 12 s.

    .venv/bin/python benchmarks/audit_live_bench.py [--endpoints 200] [--silent 20] [--timeout 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GOAL_SECONDS = 12.0
_SCRIPT = Path(sys.executable).parent / "privca"
PRIVCA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "privca"]


def _credentials(folder: Path) -> tuple[Path, Path]:
    """A leaf (+ issuing CA) certificate file and its key, for every answering endpoint."""
    now = datetime.now(timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Live Issuing CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node.uc.example.com")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("node.uc.example.com")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = folder / "chain.pem", folder / "key.pem"
    cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca)))
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return cert_file, key_file


class Estate:
    """Listening sockets on 127.0.0.1: ``answering`` serve TLS, ``silent`` accept and never say a word."""

    def __init__(self, endpoints: int, silent: int, folder: Path) -> None:
        cert_file, key_file = _credentials(folder)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.sockets: list[socket.socket] = []
        self.targets: list[str] = []
        # The silent ones are spread through the list, as dead hosts are in a real inventory.
        silent_at = {round(i * endpoints / silent) for i in range(silent)} if silent else set()
        for index in range(endpoints):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            self.sockets.append(listener)
            self.targets.append(f"127.0.0.1:{listener.getsockname()[1]}")
            serve = self._hold if index in silent_at else self._serve
            threading.Thread(target=self._accept, args=(listener, serve), daemon=True).start()

    def _accept(self, listener: socket.socket, serve: object) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()  # type: ignore[arg-type]

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(30)
        try:
            with self.context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # until the client closes
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()

    @staticmethod
    def _hold(connection: socket.socket) -> None:
        with connection:
            try:
                while connection.recv(4096):  # read the ClientHello, answer nothing, until the client gives up
                    pass
            except OSError:
                pass

    def close(self) -> None:
        for listener in self.sockets:
            listener.close()


def time_privca(targets: list[str], timeout: float, concurrency: int) -> tuple[float, dict[str, int]]:
    command = [*PRIVCA, "audit", *targets, "--timeout", f"{timeout:g}", "--concurrency", str(concurrency), "--json",
               "--fail-on", "never"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, timeout=3600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"privca audit failed: {done.stderr}")
    summary = json.loads(done.stdout)["summary"]
    return elapsed, {"certificates": summary["certificates"], "unreadable": summary["unreadable"]}


def time_s_client_loop(targets: list[str], timeout: float) -> tuple[float, int]:
    """One `openssl s_client` per endpoint, each cut off after the timeout (s_client has no handshake timeout)."""
    answered = 0
    start = time.perf_counter()
    for target in targets:
        try:
            done = subprocess.run(["openssl", "s_client", "-connect", target, "-showcerts"], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
            answered += b"BEGIN CERTIFICATE" in done.stdout
        except subprocess.TimeoutExpired:
            pass
    return time.perf_counter() - start, answered


def measure(endpoints: int, silent: int, timeout: float) -> dict[str, object]:
    from privca.inspect.audit import DEFAULT_CONCURRENCY

    with tempfile.TemporaryDirectory(prefix="privca-live-") as tmp:
        estate = Estate(endpoints, silent, Path(tmp))
        try:
            concurrent, found = time_privca(estate.targets, timeout, DEFAULT_CONCURRENCY)
            sequential, found_sequential = time_privca(estate.targets, timeout, 1)
            loop, answered = time_s_client_loop(estate.targets, timeout)
        finally:
            estate.close()
    assert found == found_sequential and found["unreadable"] == silent, (found, found_sequential)
    return {"endpoints": endpoints, "silent": silent, "timeout": timeout, "concurrency": DEFAULT_CONCURRENCY,
            "privca": concurrent, "sequential": sequential, "s_client": loop, "answered": answered,
            "found": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--silent", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    result = measure(args.endpoints, args.silent, args.timeout)
    privca_s, sequential_s, loop_s = (float(result[k]) for k in ("privca", "sequential", "s_client"))  # type: ignore[arg-type]
    print(f"estate: {args.endpoints} loopback endpoints, {args.silent} never answer; --timeout {args.timeout:g}")
    print(f"privca audit --concurrency {result['concurrency']} (default): {privca_s:.2f} s; {result['found']}")
    print(f"privca audit --concurrency 1 (sequential, as before): {sequential_s:.2f} s "
          f"({sequential_s / privca_s:.1f}x slower)")
    print(f"openssl s_client loop: {loop_s:.2f} s, {result['answered']} answered ({loop_s / privca_s:.1f}x slower)")
    met = privca_s < GOAL_SECONDS
    print(f"goal: under {GOAL_SECONDS:g} s: {'OK' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
