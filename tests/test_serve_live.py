"""`privca serve` answers from the ledger as it is now, with real peers: `openssl ocsp` and plain HTTP clients.

- A CA generation made by `privca rotate intermediate` while serve runs answers OCSP for its new leaves at once
  (it used to answer `unauthorized` until a restart).
- CRLs carry ETag/Last-Modified/Cache-Control; OCSP GET answers carry RFC 5019's caching headers.
- /health is 200 with fresh CRLs and 503 with a stale one; /metrics is Prometheus text; unknown paths are 404.
- Nonce-less requests are answered from the pre-signed responses in the store, which follow revocations.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from conftest import NOW, run_tool

ATTIME = str(int(datetime.now(timezone.utc).timestamp()))


@pytest.fixture
def leaf(store: Any, make_csr: Any, tmp_path: Path, passphrase: Any) -> dict[str, Any]:
    from privca.authority.signer import issue

    return issue(store, [make_csr("expc0.csr", cn="expc0.example.com", sans=["expc0.example.com"])], passphrase,
                 now=NOW, out_dir=tmp_path / "certs")[0].to_json()


def start_serve(store_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "privca", "serve", "--store", str(store_path), "--port", "0",
                                *extra], stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline() if process.stderr else ""
    if "listening on http://127.0.0.1:" not in first:
        process.kill()
        raise AssertionError(first + (process.stderr.read() if process.stderr else ""))
    return process, first.split("listening on ")[1].strip()


@pytest.fixture
def served(store: Any, store_path: Path, leaf: dict[str, Any], passphrase: Any) -> Iterator[dict[str, Any]]:
    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=datetime.now(timezone.utc))
    store.close()
    process, url = start_serve(store_path)
    try:
        yield {"url": url, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err  # a graceful stop
        assert "privca serve: stopped" in err


def ca_pem(chain_path: str, tmp_path: Path, name: str = "issuing.pem") -> Path:
    chain = Path(chain_path).read_text()
    path = tmp_path / name
    path.write_text(chain[: chain.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n")
    return path


def openssl_ocsp(url: str, issuer: Path, cafile: str, *target: str) -> str:
    result = run_tool("openssl", "ocsp", "-url", url, "-issuer", issuer, "-CAfile", cafile, "-attime", ATTIME,
                      *target)
    return result.stdout + result.stderr


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """Status, headers (looked up without regard to case) and body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_rotation_while_serving_answers_for_the_new_generation(served: dict[str, Any], cli: Any, store_path: Path,
                                                                make_csr: Any, leaf: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """Issue 13 item 1: rotate the intermediate while serve runs, issue a leaf, OCSP says good (no restart)."""
    url = served["url"] + "/ocsp"
    result = cli("rotate", "intermediate", "--store", store_path)
    assert result.exit_code == 0, result.stderr
    csr = make_csr("new.csr", cn="expc9.example.com", sans=["expc9.example.com"])
    result = cli("issue", csr, "--out", tmp_path / "new", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    new = json.loads(result.stdout)["certificates"][0]
    new_issuer = ca_pem(new["chain_path"], tmp_path, "issuing-2.pem")
    assert new_issuer.read_text() != ca_pem(leaf["chain_path"], tmp_path, "issuing-1.pem").read_text()
    answer = openssl_ocsp(url, new_issuer, new["chain_path"], "-cert", new["cert_path"])
    assert "Response verify OK" in answer and f"{new['cert_path']}: good" in answer, answer
    sha256 = openssl_ocsp(url, new_issuer, new["chain_path"], "-sha256", "-cert", new["cert_path"])
    assert f"{new['cert_path']}: good" in sha256, sha256
    # The old generation still answers for its own leaf.
    old = openssl_ocsp(url, ca_pem(leaf["chain_path"], tmp_path), leaf["chain_path"], "-cert", leaf["cert_path"])
    assert f"{leaf['cert_path']}: good" in old, old
    # Revoked while serving: the new generation's answer changes at once.
    assert cli("revoke", new["serial"], "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    revoked = openssl_ocsp(url, new_issuer, new["chain_path"], "-cert", new["cert_path"])
    assert "Response verify OK" in revoked and f"{new['cert_path']}: revoked" in revoked, revoked
    # Negative controls: asking the new generation about the old generation's leaf is not "good" (the serial is not
    # one it issued), and trusting only the old issuing CA (not the root) makes openssl reject the signature chain.
    crossed = openssl_ocsp(url, new_issuer, new["chain_path"], "-cert", leaf["cert_path"])
    assert ": good" not in crossed, crossed
    saved = tmp_path / "answer.der"
    run_tool("openssl", "ocsp", "-url", url, "-issuer", new_issuer, "-cert", new["cert_path"], "-respout", saved)
    body = bytearray(saved.read_bytes())
    body[-1] ^= 0x01  # the last byte of the signature
    saved.write_bytes(bytes(body))
    tampered = run_tool("openssl", "ocsp", "-respin", saved, "-issuer", new_issuer, "-CAfile", new["chain_path"],
                        "-attime", ATTIME, "-no_nonce", "-cert", new["cert_path"])
    assert "Response Verify Failure" in tampered.stdout + tampered.stderr


def _get_request(cert_path: str, chain_path: str, tmp_path: Path, algorithm: Any = None) -> str:
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    issuer = x509.load_pem_x509_certificate(ca_pem(chain_path, tmp_path).read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1()).build()
    return base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()


def test_ocsp_get_has_rfc5019_headers_and_comes_from_the_presigned_cache(
        served: dict[str, Any], cli: Any, store_path: Path, leaf: dict[str, Any], tmp_path: Path) -> None:
    encoded = _get_request(leaf["cert_path"], leaf["chain_path"], tmp_path)
    status, headers, body = fetch(f"{served['url']}/ocsp/{urllib.request.quote(encoded, safe='')}")
    assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(body)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 3000 < max_age <= 3600 and "public" in headers["Cache-Control"]
    assert headers["Last-Modified"] and headers["Expires"] and headers["ETag"]
    # The live answer was kept as the pre-signed response; the next request gets those very bytes from the cache.
    cached = list((store_path / "ocsp" / "sha1").rglob("*.der"))
    assert len(cached) == 1 and cached[0].read_bytes() == body
    assert fetch(f"{served['url']}/ocsp/{urllib.request.quote(encoded, safe='')}")[2] == body
    _, _, metrics = fetch(served["url"] + "/metrics")
    assert 'privca_ocsp_responses_total{source="cache",status="good"}' in metrics.decode()
    # Negative control: after a revocation the cached "good" is not handed out; the new answer says revoked.
    assert cli("revoke", leaf["serial"], "--reason", "superseded", "--store", store_path).exit_code == 0
    _, _, after = fetch(f"{served['url']}/ocsp/{urllib.request.quote(encoded, safe='')}")
    assert ocsp.load_der_ocsp_response(after).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert cached[0].read_bytes() == after
    # A POST from openssl (with a nonce) is signed live and echoes the nonce.
    answer = openssl_ocsp(served["url"] + "/ocsp", ca_pem(leaf["chain_path"], tmp_path), leaf["chain_path"],
                          "-cert", leaf["cert_path"])
    assert ": revoked" in answer and "WARNING: no nonce" not in answer, answer


def test_crl_caching_headers_and_conditional_get(served: dict[str, Any]) -> None:
    status, headers, body = fetch(served["url"] + "/crl/issuing-1.crl")
    assert status == 200 and headers["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(body)
    assert headers["Last-Modified"] == crl.last_update_utc.strftime("%a, %d %b %Y %H:%M:%S GMT")
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert abs((crl.next_update_utc - datetime.now(timezone.utc)).total_seconds() - max_age) < 60
    assert fetch(served["url"] + "/crl/issuing-1.crl", {"If-None-Match": headers["ETag"]})[0] == 304
    # Negative controls: another ETag gets the whole CRL; the PEM form has its own ETag.
    assert fetch(served["url"] + "/crl/issuing-1.crl", {"If-None-Match": '"other"'})[0] == 200
    assert fetch(served["url"] + "/crl/issuing-1.crl.pem")[1]["ETag"] != headers["ETag"]


def test_health_metrics_and_unknown_paths(served: dict[str, Any], store: Any, store_path: Path,
                                          passphrase: Any) -> None:
    status, headers, body = fetch(served["url"] + "/health")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok", report
    assert report["crls"]["issuing-1"]["state"] == "fresh" and report["keys"] == {"issuing-1": "ok"}
    status, headers, body = fetch(served["url"] + "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for metric in ('privca_crl_age_seconds{ca="issuing-1"}', 'privca_crl_next_update_seconds{ca="root-1"}',
                   'privca_certificates{profile="expressway-c",status="valid"} 1.0', "privca_soonest_expiry_seconds"):
        assert metric in text, text
    for path in ("/nothing", "/health/x", "/crl/nothing.crl"):
        assert fetch(served["url"] + path)[0] == 404
    # Negative control: a CRL past its nextUpdate turns /health to 503, naming the CA.
    with sqlite3_connect(store_path) as conn:
        conn.execute("UPDATE crls SET next_update = '2000-01-01T00:00:00+00:00'"
                     " WHERE ca_id = (SELECT id FROM cas WHERE name = 'issuing-1')")
    status, _, body = fetch(served["url"] + "/health")
    report = json.loads(body)
    assert status == 503 and report["crls"]["issuing-1"]["state"] == "stale"
    assert any("issuing-1" in problem for problem in report["problems"])


def sqlite3_connect(store_path: Path) -> Any:
    import sqlite3

    return sqlite3.connect(store_path / "privca.db")


def test_sigterm_stops_the_workers_gracefully(store: Any, store_path: Path, leaf: dict[str, Any],
                                              passphrase: Any) -> None:
    import socket

    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=datetime.now(timezone.utc))
    store.close()
    process, url = start_serve(store_path, "--workers", "2", "--request-timeout", "30")
    port = int(url.rsplit(":", 1)[1])
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET /crl/issuing-1.crl HTTP/1.1\r\nHost: t\r\n\r\n")  # keep-alive: stays open afterwards
    assert conn.recv(65536).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    # Both workers and the parent exit cleanly, well before the idle connection's 30 s deadline.
    assert process.returncode == 0 and "privca serve: stopped" in err and "Traceback" not in err, err
    assert time.monotonic() - started < 10
    conn.settimeout(5)
    while conn.recv(65536):
        pass  # the server closed the idle keep-alive connection
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
