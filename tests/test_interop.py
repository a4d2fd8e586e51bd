"""Certificates checked by real peers: openssl verify, pyca's verifier, TLS handshakes, and pkilint.

Each positive check has its negative control beside it: a serverAuth-only certificate must fail as a TLS client
and a clientAuth-only certificate must fail as a TLS server, on the side that actually enforces it.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.verification import PolicyBuilder, Store as TrustStore, VerificationError

from conftest import build_csr, run_tool, venv_tool
from privca.ledger.cas import all_cas

HOST = "expc1.example.com"


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory, _template_store: Path) -> dict[str, dict[str, Path]]:
    """One certificate per Expressway profile, with its key, issued from a copy of the session CA."""
    from privca.keys.material import Passphrase
    from privca.authority.signer import issue
    from privca.ledger.store import Store

    from conftest import NOW, PASSPHRASE

    base = tmp_path_factory.mktemp("interop")
    shutil.copytree(_template_store, base / "store")
    store = Store(base / "store")
    # A clientAuth-only certificate, for the negative controls (the shipped client profile grants both EKUs).
    (base / "store" / "profiles" / "client-only.toml").write_text(
        'extends = "expressway-c"\nschema = 1\ndescription = "clientAuth only"\nkind = "leaf"\n'
        '[extended_key_usage]\nvalues = ["clientAuth"]\n')
    result: dict[str, dict[str, Path]] = {}
    for profile in ("expressway-c", "expressway-server", "expressway-client", "client-only"):
        key = rsa.generate_private_key(65537, 2048)
        key_path = base / f"{profile}.key"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        csr_path = base / f"{profile}.csr"
        csr_path.write_bytes(build_csr(key).public_bytes(serialization.Encoding.PEM))
        [issued] = issue(store, [csr_path], Passphrase(PASSPHRASE.encode()), now=NOW, profile=profile)
        record = issued.to_json()
        result[profile] = {"cert": Path(record["cert_path"]), "chain": Path(record["chain_path"]),
                           "fullchain": Path(record["fullchain_path"]), "key": key_path}
    cas = all_cas(store.ledger)
    root = base / "root.pem"
    root.write_text(next(ca.pem for ca in cas if ca.role == "root"))
    intermediate = base / "issuing.pem"
    intermediate.write_text(next(ca.pem for ca in cas if ca.role == "issuing"))
    result["ca"] = {"root": root, "issuing": intermediate}
    store.close()
    return result


# --- openssl verify -purpose -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("profile", "purpose", "ok"),
    [
        ("expressway-c", "sslserver", True),
        ("expressway-c", "sslclient", True),
        ("expressway-server", "sslserver", True),
        ("expressway-server", "sslclient", False),
        ("expressway-client", "sslclient", True),
        ("expressway-client", "sslserver", True),  # Cisco's pattern for the X15.5 client store (TAC 225693)
        ("client-only", "sslclient", True),
        ("client-only", "sslserver", False),
    ],
)
def test_openssl_verify_purpose(issued, profile: str, purpose: str, ok: bool) -> None:
    paths = issued[profile]
    result = run_tool("openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", paths["chain"], paths["cert"])
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    if not ok:
        assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_openssl_verify_rejects_a_foreign_ca(issued, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    run_tool("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             tmp_path / "other.key", "-out", other, "-subj", "/CN=Test UC Root CA", "-days", "30", check=True)
    result = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", other, "-untrusted",
                      issued["ca"]["issuing"], issued["expressway-c"]["cert"])
    assert result.returncode != 0


# --- pyca/cryptography's verifier (enforces EKU on the whole chain) ----------------------------------------

def _pyca(issued, profile: str, role: str) -> None:
    root = x509.load_pem_x509_certificate(issued["ca"]["root"].read_bytes())
    issuing = x509.load_pem_x509_certificate(issued["ca"]["issuing"].read_bytes())
    leaf = x509.load_pem_x509_certificate(issued[profile]["cert"].read_bytes())
    builder = PolicyBuilder().store(TrustStore([root]))
    if role == "server":
        builder.build_server_verifier(x509.DNSName(HOST)).verify(leaf, [issuing])
    else:
        builder.build_client_verifier().verify(leaf, [issuing])


@pytest.mark.parametrize(
    ("profile", "role", "ok"),
    [
        ("expressway-c", "server", True), ("expressway-c", "client", True),
        ("expressway-server", "server", True), ("expressway-server", "client", False),
        ("expressway-client", "client", True), ("expressway-client", "server", True),
        ("client-only", "client", True), ("client-only", "server", False),
    ],
)
def test_pyca_verifier(issued, profile: str, role: str, ok: bool) -> None:
    if ok:
        _pyca(issued, profile, role)
    else:
        with pytest.raises(VerificationError, match="EKU"):
            _pyca(issued, profile, role)


# --- mutual TLS handshakes with Python's ssl (OpenSSL underneath) ------------------------------------------

def _mtls(server: dict[str, Path], client: dict[str, Path], root: Path, version: ssl.TLSVersion) -> tuple[str | None, str | None]:
    """Run one handshake on loopback; return (server error, client error), None meaning success.

    The server's verdict is what counts: under TLS 1.3 the client finishes before the server checks it.
    """
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = server_ctx.maximum_version = version
    server_ctx.load_cert_chain(server["fullchain"], server["key"])
    server_ctx.load_verify_locations(root)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.minimum_version = client_ctx.maximum_version = version
    client_ctx.load_verify_locations(root)
    client_ctx.load_cert_chain(client["fullchain"], client["key"])

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: dict[str, str | None] = {"server": None}

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError) as exc:
            outcome["server"] = str(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    client_error = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=HOST) as tls:
                tls.recv(5)  # reading after the handshake surfaces a TLS 1.3 server-side rejection
    except (ssl.SSLError, OSError) as exc:
        client_error = str(exc)
    thread.join(10)
    listener.close()
    return outcome["server"], client_error


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_expressway_c_certificate_works_in_both_roles(issued, version) -> None:
    cert = issued["expressway-c"]
    server_error, client_error = _mtls(cert, cert, issued["ca"]["root"], version)
    assert server_error is None and client_error is None


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_server_only_certificate_is_rejected_as_client_by_the_server(issued, version) -> None:
    server_error, _ = _mtls(issued["expressway-c"], issued["expressway-server"], issued["ca"]["root"], version)
    assert server_error is not None and "unsuitable certificate purpose" in server_error


def test_client_only_certificate_is_rejected_as_server_by_the_client(issued) -> None:
    server_error, client_error = _mtls(issued["client-only"], issued["expressway-c"], issued["ca"]["root"],
                                       ssl.TLSVersion.TLSv1_2)
    assert client_error is not None and "unsuitable certificate purpose" in client_error


# --- openssl s_server / s_client ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _s_server_with_client(issued, client_profile: str) -> tuple[str, str]:
    """One s_client handshake against s_server -Verify; returns (client output, server output)."""
    server = issued["expressway-c"]
    port = _free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", server["cert"], "-cert_chain",
         server["chain"], "-key", server["key"], "-CAfile", issued["ca"]["root"], "-Verify", "1",
         "-verify_return_error", "-tls1_2", "-naccept", "1"],
        # s_server ends the connection when its stdin reaches EOF: keep stdin open.
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = issued[client_profile]
        assert proc.stdout is not None
        for _ in range(5):  # s_server prints ACCEPT once it listens
            ready = proc.stdout.readline()
            if "ACCEPT" in ready or not ready:
                break
        assert "ACCEPT" in ready, ready
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", client["cert"], "-key", client["key"],
             "-cert_chain", client["chain"], "-CAfile", issued["ca"]["root"], "-verify_return_error",
             "-servername", HOST, "-verify_hostname", HOST, "-tls1_2"],
            input="", capture_output=True, text=True, timeout=30)
    finally:
        proc.kill()
        server_output = proc.communicate()[0]
    return result.stdout + result.stderr, server_output


def test_openssl_s_server_accepts_expressway_c_client(issued) -> None:
    client_output, server_output = _s_server_with_client(issued, "expressway-c")
    assert "Verify return code: 0 (ok)" in client_output
    assert "CIPHER is" in server_output and "verify error" not in server_output, server_output


def test_openssl_s_server_rejects_server_only_client(issued) -> None:
    _, server_output = _s_server_with_client(issued, "expressway-server")
    assert "unsuitable certificate purpose" in server_output and "CIPHER is" not in server_output


# --- pkilint: RFC 5280 conformance ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["root", "issuing", "expressway-c", "expressway-server", "expressway-client"])
def test_pkilint_finds_no_error(issued, which: str) -> None:
    path = issued["ca"][which] if which in ("root", "issuing") else issued[which]["cert"]
    result = run_tool(venv_tool("lint_pkix_cert"), "lint", "-s", "ERROR", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pkilint_chain_linter(issued) -> None:
    lint = venv_tool("lint_pkix_signer_signee_cert_chain")
    for signer, signee in ((issued["ca"]["root"], issued["ca"]["issuing"]),
                           (issued["ca"]["issuing"], issued["expressway-c"]["cert"])):
        result = run_tool(lint, "lint", "-s", "ERROR", signer, signee)
        assert result.returncode == 0, result.stdout + result.stderr


def test_pkilint_negative_control(tmp_path: Path) -> None:
    """pkilint does flag a non-conforming certificate, so a clean result above means something."""
    bad = tmp_path / "bad.pem"
    run_tool("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / "k", "-out", bad,
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost_", "-days", "1", check=True)
    result = run_tool(venv_tool("lint_pkix_cert"), "lint", "-s", "ERROR", bad)
    assert result.returncode != 0
