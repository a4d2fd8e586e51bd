"""`privca publish` + the shipped nginx site: a real nginx answers CRLs and OCSP GETs from files, no privca running.

Each answer nginx hands out is checked by `openssl ocsp -respin` (signature, status, CertID) or `openssl verify
-crl_check`; revocations reach the files with the next publish; unknown requests get 404.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from conftest import NOW, run_tool

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "privca-pki.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The shipped site, with only its listen address and root changed, in a real nginx (Debian's)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is missing; scripts/test installs it (apt-get install nginx)")
    www, prefix, port = tmp_path / "www", tmp_path / "nginx", free_port()
    www.mkdir()
    (prefix / "logs").mkdir(parents=True)
    site = SITE.read_text()
    assert "root /var/www/pki;" in site and "listen 80;" in site
    site = (site.replace("root /var/www/pki;", f"root {www};")
            .replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;", ""))
    (prefix / "site.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        "user root;\nworker_processes 1;\nerror_log logs/error.log;\npid logs/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        "http {\n access_log logs/access.log;\n"
        f" client_body_temp_path {prefix}/tmp;\n proxy_temp_path {prefix}/tmp;\n fastcgi_temp_path {prefix}/tmp;\n"
        f" uwsgi_temp_path {prefix}/tmp;\n scgi_temp_path {prefix}/tmp;\n"
        " include site.conf;\n}\n")
    checked = run_tool(binary, "-t", "-p", prefix, "-c", prefix / "nginx.conf")
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                               stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # up to 30 s on a busy machine
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError("nginx did not start: " + (process.stderr.read() if process.stderr else ""))
    try:
        yield {"url": f"http://127.0.0.1:{port}", "www": www}
    finally:
        process.terminate()
        process.communicate(timeout=10)


def fetch(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get_url(base: str, cert_path: str, issuer: x509.Certificate, algorithm: Any) -> str:
    """The RFC 6960 A.1 GET URL a client builds: base64 of the nonce-less request, slashes left as they are."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
    return f"{base}/ocsp/{base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()}"


def check_with_openssl(body: bytes, tmp_path: Path, issuer_pem: Path, chain: str, cert_path: str,
                       digest: str = "sha1") -> str:
    answer = tmp_path / "answer.der"
    answer.write_bytes(body)
    result = run_tool("openssl", "ocsp", "-respin", answer, "-issuer", issuer_pem, "-CAfile", chain, "-no_nonce",
                      "-attime", str(int(datetime.now(timezone.utc).timestamp())), f"-{digest}", "-cert", cert_path)
    return result.stdout + result.stderr


def test_nginx_serves_presigned_ocsp_and_crls(nginx: dict[str, Any], store: Any, store_path: Path, make_csr: Any,
                                               cli: Any, tmp_path: Path, passphrase: Any) -> None:
    from privca.authority.signer import issue

    csrs = [make_csr(f"expc{i}.csr", cn=f"expc{i}.example.com", sans=[f"expc{i}.example.com"]) for i in range(2)]
    leaves = [item.to_json() for item in issue(store, csrs, passphrase, now=NOW, out_dir=tmp_path / "certs")]
    store.close()
    assert cli("crl", "--store", store_path).exit_code == 0
    result = cli("publish", nginx["www"], "--store", store_path)
    assert result.exit_code == 0, result.stderr
    assert "issuing-1: OCSP for 2 certificates -> http://pki.example.test/ocsp" in result.stdout, result.stdout
    chain = leaves[0]["chain_path"]
    text = Path(chain).read_text()
    issuer_pem = tmp_path / "issuing.pem"
    issuer_pem.write_text(text[: text.index("-----END CERTIFICATE-----") + 25] + "\n")
    issuer = x509.load_pem_x509_certificate(issuer_pem.read_bytes())

    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        status, headers, body = fetch(get_url(nginx["url"], leaves[0]["cert_path"], issuer, algorithm))
        assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
        checked = check_with_openssl(body, tmp_path, issuer_pem, chain, leaves[0]["cert_path"], algorithm.name)
        assert "Response verify OK" in checked and ": good" in checked, checked
        response = ocsp.load_der_ocsp_response(body)
        assert response.hash_algorithm.name == algorithm.name
        # RFC 5019 6.2: Last-Modified is thisUpdate, Expires is nextUpdate, max-age what is left.
        assert parsedate_to_datetime(headers["Last-Modified"]) == response.this_update_utc
        assert parsedate_to_datetime(headers["Expires"]) == response.next_update_utc
        assert 0 < int(headers["Cache-Control"].split("max-age=")[1]) <= 3600

    # The CRL from nginx: openssl verify with it passes the good leaf.
    status, headers, crl = fetch(nginx["url"] + "/crl/issuing-1.crl")
    assert status == 200 and headers["Content-Type"] == "application/pkix-crl"
    good = run_tool("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", _pem_crl(crl, tmp_path),
                    leaves[0]["cert_path"])
    assert good.returncode == 0, good.stdout + good.stderr

    # Revoked, then published again: nginx's answer says revoked (a fresh file), the other leaf stays good.
    assert cli("revoke", leaves[0]["serial"], "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    assert cli("crl", "--store", store_path).exit_code == 0
    result = cli("publish", nginx["www"], "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    _, _, body = fetch(get_url(nginx["url"], leaves[0]["cert_path"], issuer, hashes.SHA1()))
    checked = check_with_openssl(body, tmp_path, issuer_pem, chain, leaves[0]["cert_path"])
    assert "Response verify OK" in checked and ": revoked" in checked and "keyCompromise" in checked, checked
    _, _, other = fetch(get_url(nginx["url"], leaves[1]["cert_path"], issuer, hashes.SHA1()))
    assert ": good" in check_with_openssl(other, tmp_path, issuer_pem, chain, leaves[1]["cert_path"])
    _, _, crl = fetch(nginx["url"] + "/crl/issuing-1.crl")
    revoked = run_tool("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", _pem_crl(crl, tmp_path),
                       leaves[0]["cert_path"])
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr

    # Negative controls: a request for a serial privca never issued, a nonce-bearing request (not pre-signable),
    # and a path outside the CRL and OCSP folders all get 404, not someone else's answer.
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *_hashes(issuer), 0x1234, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    assert fetch(f"{nginx['url']}/ocsp/{base64.b64encode(unknown).decode()}")[0] == 404
    cert = x509.load_pem_x509_certificate(Path(leaves[1]["cert_path"]).read_bytes())
    nonced = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
              .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build())
    assert fetch(f"{nginx['url']}/ocsp/"
                 f"{base64.b64encode(nonced.public_bytes(serialization.Encoding.DER)).decode()}")[0] == 404
    assert fetch(nginx["url"] + "/privca.db")[0] == 404


def _pem_crl(der: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "crl.pem"
    path.write_bytes(x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM))
    return path


def _hashes(issuer: x509.Certificate) -> tuple[bytes, bytes]:
    from privca.revocation.ocsp import issuer_hashes

    return issuer_hashes(issuer, "sha1")


def test_publish_removes_answers_nobody_stands_behind(store: Any, store_path: Path, make_csr: Any, cli: Any,
                                                      tmp_path: Path, passphrase: Any) -> None:
    """A CA revoked (its key leaked): its pre-signed "good" answers leave the web server's folder."""
    from privca.authority.signer import issue

    issue(store, [make_csr("a.csr", cn="a.example.com", sans=["a.example.com"])], passphrase, now=NOW,
          out_dir=tmp_path / "certs")
    issuing_serial = next(ca.serial for ca in _cas(store) if ca.name == "issuing-1")
    store.close()
    www = tmp_path / "www"
    assert cli("crl", "--store", store_path).exit_code == 0
    assert cli("publish", www, "--store", store_path).exit_code == 0
    assert len([p for p in (www / "ocsp").rglob("*") if p.is_file()]) == 2  # SHA-1 and SHA-256
    assert cli("revoke", issuing_serial, "--ca", "--reason", "caCompromise", "--store", store_path).exit_code == 0
    assert cli("crl", "--store", store_path).exit_code == 0
    result = cli("publish", www, "--store", store_path)
    assert result.exit_code == 0, result.stderr
    assert not (www / "ocsp").exists() or not [p for p in (www / "ocsp").rglob("*") if p.is_file()]
    # Negative control: the CRLs are still there.
    assert (www / "crl" / "issuing-1.crl").is_file() and (www / "crl" / "root-1.crl").is_file()


def _cas(store: Any) -> list[Any]:
    from privca.ledger import cas

    return cas.all_cas(store.require_ca())


def test_the_presigned_cache_in_the_store_is_owner_only(store: Any, store_path: Path, make_csr: Any, cli: Any,
                                                        tmp_path: Path, passphrase: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """publish keeps its signed answers in store/ocsp: owner-only like the rest of the store, whatever the umask,
    so privca verify stays clean; the web server's copy stays readable for nginx (the control)."""
    from privca.authority.signer import issue

    issue(store, [make_csr("a.csr", cn="a.example.com", sans=["a.example.com"])], passphrase, now=NOW,
          out_dir=tmp_path / "certs")
    store.close()
    www = tmp_path / "www"
    assert cli("crl", "--store", store_path).exit_code == 0
    old = os.umask(0o022)
    try:
        assert cli("publish", www, "--store", store_path).exit_code == 0
    finally:
        os.umask(old)
    cached = list((store_path / "ocsp").rglob("*"))
    assert len([p for p in cached if p.is_file()]) == 2
    assert all(p.stat().st_mode & 0o077 == 0 for p in [store_path / "ocsp", *cached]), \
        [(str(p), oct(p.stat().st_mode)) for p in cached]
    result = cli("verify", "--store", store_path)
    assert result.exit_code == 0, result.stdout + result.stderr
    served = [p for p in (www / "ocsp").rglob("*") if p.is_file()]
    assert served and all(p.stat().st_mode & 0o044 == 0o044 for p in served)
