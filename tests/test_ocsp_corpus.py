"""Hostile OCSP requests (tests/corpus/ocsp, listed under [[ocsp]] in cases.toml): the responder privca serve
runs answers each with an unsigned error status, in-process and over HTTP (POST and GET), with no traceback; the
well-formed request beside them (the control) gets a signed answer that openssl accepts. Requests for the real
issuer with serials no certificate can have get a signed "unknown" (zero, longer than 20 octets) or, for a
negative one that cannot be signed, malformedRequest."""

from __future__ import annotations

import base64
import signal
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from test_corpus import CORPUS
from test_ocsp_requests import served  # noqa: F401 - the fixture: a leaf issued, its issuer, a Responder
from test_serve_live import ca_pem, fetch, start_serve
from conftest import run_tool

OCSP_CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())["ocsp"]


def _status(body: bytes) -> str:
    return ocsp.load_der_ocsp_response(body).response_status.name


def test_every_ocsp_case_is_listed() -> None:
    on_disk = {f"ocsp/{path.name}" for path in (CORPUS / "ocsp").iterdir()}
    assert on_disk == {case["input"] for case in OCSP_CASES} and len(on_disk) >= 15


@pytest.mark.parametrize("case", OCSP_CASES, ids=lambda c: c["input"])
def test_hostile_request_in_process(case: dict[str, Any], served: dict[str, Any]) -> None:
    answer = served["responder"].respond((CORPUS / case["input"]).read_bytes(), served["now"])
    assert _status(answer) == case["status"]
    assert len(answer) < 16  # an unsigned status: nothing a request could make privca sign


def _serial_request(issuer_cert: x509.Certificate, serial: int) -> bytes:
    """A request for ``serial`` under the real issuer, assembled by hand (the builders refuse odd serials)."""
    from privca.revocation.ocsp import issuer_hashes

    name_hash, key_hash = issuer_hashes(issuer_cert, "sha256")
    raw = serial.to_bytes(max(1, (serial + (serial < 0)).bit_length() // 8 + 1), "big", signed=True)

    def tlv(tag: int, body: bytes) -> bytes:
        return bytes([tag, len(body)]) + body

    cert_id = tlv(0x30, tlv(0x30, bytes.fromhex("0609608648016503040201") + b"\x05\x00") + tlv(0x04, name_hash)
                  + tlv(0x04, key_hash) + tlv(0x02, raw))
    return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, cert_id))))


def test_a_negative_serial_under_the_real_issuer_is_malformed(served: dict[str, Any]) -> None:
    answer = served["responder"].respond(_serial_request(served["issuer"].cert, -5), served["now"])
    assert _status(answer) == "MALFORMED_REQUEST"  # was a ValueError from the signer


@pytest.mark.parametrize("serial", [0, 1 << 200])
def test_serials_no_certificate_has_are_unknown(served: dict[str, Any], serial: int) -> None:
    answer = ocsp.load_der_ocsp_response(served["responder"].respond(
        _serial_request(served["issuer"].cert, serial), served["now"]))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN and answer.serial_number == serial


def test_the_control_is_answered_and_openssl_accepts_it(served: dict[str, Any], tmp_path: Path) -> None:
    request = ocsp.OCSPRequestBuilder().add_certificate(served["cert"], served["issuer"].cert,
                                                        hashes.SHA256()).build()
    der = request.public_bytes(serialization.Encoding.DER)
    assert _serial_request(served["issuer"].cert, served["cert"].serial_number) == der  # same bytes as the builder
    answer = served["responder"].respond(der, served["now"])
    assert ocsp.load_der_ocsp_response(answer).certificate_status is ocsp.OCSPCertStatus.GOOD
    (tmp_path / "req.der").write_bytes(der)
    (tmp_path / "resp.der").write_bytes(answer)
    chain = served["record"]["chain_path"]
    checked = run_tool("openssl", "ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                       "-issuer", ca_pem(chain, tmp_path), "-CAfile", chain, "-sha256", "-cert",
                       served["record"]["cert_path"])
    assert checked.returncode == 0 and ": good" in checked.stdout, checked.stdout + checked.stderr


def post(url: str, body: bytes) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/ocsp-request"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_hostile_requests_over_http(served: dict[str, Any], store: Any, store_path: Path) -> None:
    """The same files against a running privca serve: POST and GET, each an HTTP 200 carrying the OCSP error
    status, and the server stays up and logs no traceback."""
    store.close()
    process, url = start_serve(store_path)
    try:
        for case in OCSP_CASES:
            body = (CORPUS / case["input"]).read_bytes()
            status, _, answer = post(url + "/ocsp", body)
            if len(body) > 16 * 1024:  # no OCSP request is this long: refused before it is parsed
                assert status == 413, case["input"]
                continue
            assert status == 200 and _status(answer) == case["status"], case["input"]
            if 0 < len(body) < 2000:  # RFC 5019 GET is for small requests; longer ones are POSTed
                encoded = urllib.parse.quote(base64.b64encode(body).decode(), safe="")
                status, _, answer = fetch(f"{url}/ocsp/{encoded}")
                assert status == 200 and _status(answer) == case["status"], case["input"]
        control = ocsp.OCSPRequestBuilder().add_certificate(served["cert"], served["issuer"].cert,
                                                            hashes.SHA256()).build()
        status, _, answer = post(url + "/ocsp", control.public_bytes(serialization.Encoding.DER))
        assert status == 200  # still serving, and the control is answered
        assert ocsp.load_der_ocsp_response(answer).certificate_status is ocsp.OCSPCertStatus.GOOD
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0 and "Traceback" not in err, err
