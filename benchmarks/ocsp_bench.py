"""OCSP throughput and latency: `privca serve` against `openssl ocsp -index ... -port` on the same data, one run.

Both responders answer for the same issuing CA (RSA-3072, the default) and the same 200 certificates (10 of them
revoked), with two worker processes each (`privca serve --workers 2`, `openssl ocsp -multi 2`). The load client
(asyncio, in this process) keeps N clients busy for a few seconds each, every request on a new connection as OCSP
clients do, POSTing nonce-less requests (RFC 5019) for random certificates; every answer is checked to be a
successful OCSP response (`openssl ocsp -port` takes no address: it listens on every interface for the
minute of its run). privca answers those from its pre-signed responses; a second privca row sends requests
with a nonce, which privca must sign live (as openssl does for every request).

Then, with 200 idle connections held open on privca: the latency of a normal request, the memory (RSS) of the
serve processes, and whether the idle connections are closed after --request-timeout.

The machine may be shared: compare the ratios of one run. Run: .venv/bin/python benchmarks/ocsp_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

PASSPHRASE = "benchmark passphrase 2026"
LEAVES, REVOKED = 200, 10
LEVELS = (1, 16, 64, 256)
IDLE = 200
REQUEST_TIMEOUT = 5
PRIVCA = [sys.executable, "-m", "privca"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}...: {done.stderr.strip()}")
    return done.stdout


def make_store(folder: Path, env: dict[str, str]) -> tuple[Path, list[x509.Certificate], x509.Certificate]:
    store = folder / "store"
    run(*PRIVCA, "init", "--store", str(store), "--root-cn", "Bench Root CA", "--issuing-cn", "Bench Issuing CA",
        "--org", "Bench", "--crl-url", "http://pki.bench.test/crl", "--ocsp-url", "http://pki.bench.test/ocsp",
        env=env)
    csr_dir, out = folder / "csrs", folder / "certs"
    csr_dir.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    for i in range(LEAVES):
        name = f"exp{i}.bench.test"
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
               .sign(key, hashes.SHA256()))
        (csr_dir / f"exp{i}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    run(*PRIVCA, "issue", *[str(p) for p in sorted(csr_dir.glob("*.csr"))], "--out", str(out), "--store", str(store),
        env=env)
    leaves = [x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(out.glob("exp*.pem"))
              if not p.name.endswith((".chain.pem", ".fullchain.pem"))]
    for cert in leaves[:REVOKED]:
        run(*PRIVCA, "revoke", format(cert.serial_number, "x"), "--reason", "keyCompromise", "--store", str(store),
            env=env)
    run(*PRIVCA, "crl", "--store", str(store), env=env)
    chain = (out / "exp0.chain.pem").read_bytes()
    issuer = x509.load_pem_x509_certificates(chain)[0]
    return store, leaves, issuer


def openssl_files(folder: Path, store: Path, leaves: list[x509.Certificate], issuer: x509.Certificate) -> Path:
    """index.txt with the same certificates and revocations, the issuing CA certificate and its key (decrypted,
    owner-only, in the benchmark's temporary folder)."""
    revoked = {cert.serial_number for cert in leaves[:REVOKED]}
    lines = []
    for cert in leaves:
        expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        serial = format(cert.serial_number, "X")
        serial = serial if len(serial) % 2 == 0 else "0" + serial
        subject = "/CN=" + cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        if cert.serial_number in revoked:
            lines.append(f"R\t{expiry}\t{datetime.now(timezone.utc).strftime('%y%m%d%H%M%SZ')},keyCompromise\t"
                         f"{serial}\tunknown\t{subject}")
        else:
            lines.append(f"V\t{expiry}\t\t{serial}\tunknown\t{subject}")
    (folder / "index.txt").write_text("\n".join(lines) + "\n")
    (folder / "index.txt.attr").write_text("unique_subject = no\n")
    (folder / "issuing.pem").write_bytes(issuer.public_bytes(serialization.Encoding.PEM))
    key_file = next((store / "keys").glob("issuing*.key.pem"))
    key = serialization.load_pem_private_key(key_file.read_bytes(), PASSPHRASE.encode())
    target = folder / "issuing.key"
    target.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    os.chmod(target, 0o600)
    return folder


def requests_for(leaves: list[x509.Certificate], issuer: x509.Certificate, *, nonce: bool) -> list[bytes]:
    bodies = []
    for cert in leaves:
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        bodies.append(builder.build().public_bytes(serialization.Encoding.DER))
    return bodies


async def one(port: int, path: str, body: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: pki.bench.test\r\nConnection: close\r\n"
                     f"Content-Type: application/ocsp-request\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


def successful(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        return False
    try:
        return ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    except ValueError:
        return False


async def load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    until = time.perf_counter() + seconds
    rng = random.Random(clients)

    async def client() -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                reply = await asyncio.wait_for(one(port, path, rng.choice(bodies)), 30)
            except Exception as exc:  # noqa: BLE001 - refused, reset and timeouts are what is counted
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if successful(reply):
                latencies.append(time.perf_counter() - started)
            else:
                errors["bad answer"] = errors.get("bad answer", 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000) if latencies else \
        (lambda q: float("nan"))
    return {"clients": clients, "rps": len(latencies) / elapsed, "p50_ms": pick(0.50), "p99_ms": pick(0.99),
            "errors": errors}


def wait_port(port: int, process: subprocess.Popen[Any]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"responder exited: {process.stderr.read() if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("responder did not start")


def rss_kb(pid: int) -> dict[int, int]:
    """RSS of a process and its children, by pid (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(entry.name) == pid or fields.get("PPid", "").strip() == str(pid):
            found[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    return found


async def idle_check(port: int, serve_pid: int, body: bytes) -> dict[str, Any]:
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
    await asyncio.sleep(0.5)
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        reply = await one(port, "/ocsp", body)
        assert successful(reply)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    memory = rss_kb(serve_pid)
    await asyncio.sleep(REQUEST_TIMEOUT + 2)
    closed = 0
    for reader, writer in idle:
        try:
            data = await asyncio.wait_for(reader.read(1), 1)
            closed += data == b""
        except (asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()
    return {"median_ms": samples[len(samples) // 2], "max_ms": samples[-1], "rss_kb": memory,
            "closed_after_timeout": closed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per level instead of 5")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 5.0
    env = dict(os.environ, PRIVCA_PASSPHRASE=PASSPHRASE)
    folder = Path(tempfile.mkdtemp(prefix="privca-ocsp-bench-"))
    try:
        store, leaves, issuer = make_store(folder, env)
        openssl_files(folder, store, leaves, issuer)
        plain = requests_for(leaves, issuer, nonce=False)
        nonced = requests_for(leaves, issuer, nonce=True)
        results: dict[str, list[dict[str, Any]]] = {}

        port = free_port()
        log = open(folder / "openssl.log", "w")  # noqa: SIM115 - open while openssl runs
        openssl = subprocess.Popen(
            ["openssl", "ocsp", "-index", str(folder / "index.txt"), "-port", str(port), "-rsigner",
             str(folder / "issuing.pem"), "-rkey", str(folder / "issuing.key"), "-CA", str(folder / "issuing.pem"),
             "-nmin", "60", "-multi", "2"], stdout=subprocess.DEVNULL, stderr=log)  # it makes its own session
        try:
            wait_port(port, openssl)
            results["openssl ocsp -multi 2"] = [asyncio.run(load(port, "/", plain, n, seconds)) for n in LEVELS]
            if openssl.poll() is not None:
                raise SystemExit("openssl ocsp exited: " + (folder / "openssl.log").read_text()[-2000:])
        finally:
            for pid in rss_kb(openssl.pid):  # the parent and its -multi children
                os.kill(pid, signal.SIGKILL)
            openssl.wait(10)
            log.close()

        port = free_port()
        serve = subprocess.Popen([*PRIVCA, "serve", "--store", str(store), "--port", str(port), "--workers", "2",
                                  "--request-timeout", str(REQUEST_TIMEOUT)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            wait_port(port, serve)
            asyncio.run(load(port, "/ocsp", plain, 4, 1.0))  # fills the pre-signed cache, as privca publish would
            results["privca serve (pre-signed, RFC 5019)"] = [asyncio.run(load(port, "/ocsp", plain, n, seconds))
                                                              for n in LEVELS]
            results["privca serve (nonce: signed live)"] = [asyncio.run(load(port, "/ocsp", nonced, n, seconds))
                                                            for n in LEVELS]
            idle = asyncio.run(idle_check(port, serve.pid, plain[-1]))
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"OCSP benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {os.cpu_count()} CPUs, "
          f"{seconds:.0f} s per level, new connection per request")
    print("| responder | clients | answers/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        for row in rows:
            print(f"| {name} | {row['clients']} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                  f"{sum(row['errors'].values())} {dict(row['errors']) or ''} |")
    anchor = {row["clients"]: row["rps"] or float("nan") for row in results["openssl ocsp -multi 2"]}
    for name in list(results)[1:]:
        ratios = ", ".join(f"{row['clients']}: {row['rps'] / anchor[row['clients']]:.1f}x" for row in results[name])
        print(f"{name} / openssl answers per second: {ratios}")
    total = sum(idle["rss_kb"].values())
    print(f"With {IDLE} idle connections: a request takes {idle['median_ms']:.1f} ms (median of 20, max "
          f"{idle['max_ms']:.1f}); RSS {', '.join(f'{kb / 1024:.0f}' for kb in idle['rss_kb'].values())} MB per "
          f"process ({total / 1024:.0f} MB together); {idle['closed_after_timeout']} of {IDLE} idle connections "
          f"closed by the server after --request-timeout {REQUEST_TIMEOUT} s")


if __name__ == "__main__":
    main()
