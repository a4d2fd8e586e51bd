"""audit and check report revoked certificates: from privca's ledger, from the CRL a certificate names, and from
its OCSP responder, each answer checked against OpenSSL's own reading."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_tool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def findings(result: Any) -> dict[str, dict[str, Any]]:
    """The revocation finding of each certificate of an ``audit --json``, by common name."""
    report = json.loads(result.stdout)
    return {cert["subject"].split("CN=")[1].split(",")[0]: next((f for f in cert["findings"] if f["rule"].startswith("revocation.")), {})
            | {"verdict": cert["verdict"]} for cert in report["certificates"]}


@pytest.fixture(params=["crl-and-ocsp"])
def estate(cli: Any, tmp_path: Path, make_csr: Any, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A CA whose certificates name a CRL (unless the parameter is "ocsp-only") and an OCSP responder on loopback,
    `privca serve` answering there, and two Expressway-C certificates, the first of them revoked (keyCompromise)
    and on the CRL."""
    port = free_port()
    store = tmp_path / "store"
    base = f"http://127.0.0.1:{port}"
    crl = [] if request.param == "ocsp-only" else ["--crl-url", f"{base}/crl"]
    made = cli("init", "--root-cn", "Rev Root", "--issuing-cn", "Rev Issuing 1", "--key-type", "ec:secp256r1",
               *crl, "--ocsp-url", f"{base}/ocsp", "--store", store)
    assert made.exit_code == 0, made.stderr
    issued = [json.loads(cli("issue", make_csr(f"n{i}.csr", cn=f"n{i}.example.com", sans=[f"n{i}.example.com"]),
                             "--out", tmp_path / "certs", "--store", store, "--json").stdout)["certificates"][0]
              for i in range(2)]
    assert cli("revoke", issued[0]["serial"], "--reason", "keyCompromise", "--store", store).exit_code == 0
    assert cli("crl", "--store", store).exit_code == 0
    process = subprocess.Popen([sys.executable, "-m", "privca", "serve", "--store", str(store), "--port", str(port)],
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline() if process.stderr else ""
        assert "listening on" in first, first
        yield {"store": store, "issued": issued, "folder": tmp_path / "certs", "base": base}
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_the_ledger_says_revoked_before_any_crl_is_read(cli: Any, estate: dict[str, Any]) -> None:
    revoked, good = estate["issued"]
    result = cli("check", revoked["fullchain_path"], "--for", "expressway-c", "--offline", "--store", estate["store"],
                 "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 22 and report["verdict"] == "fail"
    [rule] = [f for f in report["findings"] if f["rule"] == "revocation.revoked"]
    assert "keyCompromise" in rule["message"] and "ledger" in rule["message"]
    # Negative control: the certificate next to it passes.
    passed = cli("check", good["fullchain_path"], "--for", "expressway-c", "--offline", "--store", estate["store"],
                 "--json")
    assert passed.exit_code == 0 and json.loads(passed.stdout)["verdict"] == "pass", passed.stdout


def test_audit_reads_the_crl_the_certificate_names(cli: Any, estate: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    revoked, good = estate["issued"]
    # No store (another user, another machine): only the CRL the certificate points at can tell.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-user"))
    result = cli("audit", revoked["fullchain_path"], good["fullchain_path"], "--json", "--fail-on", "never")
    found = findings(result)
    assert found["n0.example.com"]["rule"] == "revocation.revoked" and found["n0.example.com"]["verdict"] == "revoked"
    assert found["n0.example.com"]["severity"] == "critical" and "/crl/issuing-1.crl" in found["n0.example.com"]["message"]
    assert found["n1.example.com"]["rule"] == "revocation.good"
    # OpenSSL, given the same CRL, agrees on both.
    crl = tmp_path / "issuing.crl"
    import urllib.request

    with urllib.request.urlopen(f"{estate['base']}/crl/issuing-1.crl", timeout=10) as reply:
        crl.write_bytes(reply.read())
    for record, ok in ((revoked, False), (good, True)):
        verdict = run_tool("openssl", "verify", "-crl_check", "-CRLfile", crl, "-CAfile", record["chain_path"],
                           record["cert_path"])
        assert (verdict.returncode == 0) == ok, verdict.stdout + verdict.stderr
    # --offline: nothing is fetched, so nothing is claimed.
    offline = findings(cli("audit", revoked["fullchain_path"], "--json", "--fail-on", "never", "--offline"))
    assert offline["n0.example.com"]["rule"] == "revocation.unchecked"


@pytest.mark.parametrize("estate", ["ocsp-only"], indirect=True)
def test_audit_asks_the_ocsp_responder_when_there_is_no_crl(cli: Any, estate: dict[str, Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    revoked, good = estate["issued"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-user"))
    result = cli("audit", revoked["fullchain_path"], good["fullchain_path"], "--json", "--fail-on", "never",
                 "--timeout", "5")
    found = findings(result)
    assert found["n0.example.com"]["rule"] == "revocation.revoked", found
    assert "OCSP" in found["n0.example.com"]["message"] and "key_compromise" in found["n0.example.com"]["message"]
    assert found["n1.example.com"]["rule"] == "revocation.good" and "OCSP" in found["n1.example.com"]["message"]
    ocsp = run_tool("openssl", "ocsp", "-url", f"{estate['base']}/ocsp", "-issuer", revoked["chain_path"],
                    "-CAfile", revoked["chain_path"], "-cert", revoked["cert_path"])
    assert f"{revoked['cert_path']}: revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr


def test_an_unreachable_source_is_said_and_never_claimed_good(cli: Any, tmp_path: Path, make_csr: Any,
                                                               store_path: Path) -> None:
    [record] = json.loads(cli("issue", make_csr("expc.csr"), "--store", store_path, "--json").stdout)["certificates"]
    result = cli("audit", record["fullchain_path"], "--json", "--fail-on", "never", "--timeout", "2")
    [cert] = [c for c in json.loads(result.stdout)["certificates"] if c["subject"].startswith("CN=expc1.example.com")]
    rules = {f["rule"]: f for f in cert["findings"]}
    assert "revocation.good" not in rules and "revocation.unchecked" in rules
    assert "pki.example.test" in rules["revocation.unchecked"]["message"]
