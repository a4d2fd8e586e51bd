"""OCSP request hardening (privca/revocation/ocsp.py), answered in-process by the same Responder privca serve uses:
an unknown critical request extension or a nonce over 32 octets gets malformedRequest; their ordinary twins
(a non-critical unknown extension, a 32-octet nonce) are answered, and openssl accepts the answer."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ObjectIdentifier

from conftest import run_tool
from privca.authority.ca import load_issuer
from privca.authority.signer import issue
from privca.ledger.cas import active as active_ca
from privca.revocation.ocsp import Responder

PRIVATE_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1.1")


@pytest.fixture
def served(store: Any, store_path: Path, passphrase: Any, make_csr: Any, tmp_path: Path) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    record = issue(store, [make_csr("leaf.csr", cn="leaf.example.com", sans=["leaf.example.com"])], passphrase,
                   now=now, out_dir=tmp_path / "out")[0].to_json()
    issuer = load_issuer(store, active_ca(store.ledger, "issuing"), passphrase)
    cert = x509.load_pem_x509_certificate(Path(record["cert_path"]).read_bytes())
    return {"responder": Responder(store_path / "privca.db", [issuer]), "cert": cert, "issuer": issuer,
            "record": record, "now": now}


def _request(served: dict[str, Any], *extensions: tuple[x509.ExtensionType, bool]) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(served["cert"], served["issuer"].cert, hashes.SHA256())
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _answer(served: dict[str, Any], request: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(served["responder"].respond(request, served["now"]))


@pytest.mark.parametrize("extension, critical, refused", [
    (x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), True, True),
    (x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), False, False),  # ignored, as RFC 6960 4.4 asks
    (x509.OCSPNonce(b"\x01" * 33), False, True),
    (x509.OCSPNonce(b"\x01" * 8000), False, True),  # would have been signed and echoed
    (x509.OCSPNonce(b"\x01" * 32), False, False),
    (x509.OCSPNonce(b"\x01" * 32), True, False),  # a critical nonce is understood
])
def test_request_extensions(served: dict[str, Any], extension: Any, critical: bool, refused: bool) -> None:
    answer = _answer(served, _request(served, (extension, critical)))
    if refused:
        assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        return
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    echoed = [ext.value for ext in answer.extensions if isinstance(ext.value, x509.OCSPNonce)]
    assert echoed == ([extension] if isinstance(extension, x509.OCSPNonce) else [])


def test_openssl_checks_the_echoed_nonce(served: dict[str, Any], tmp_path: Path) -> None:
    """openssl ocsp -respin: the answer to a 32-octet nonce verifies and matches the request's nonce."""
    request = _request(served, (x509.OCSPNonce(bytes(range(32))), False))
    (tmp_path / "req.der").write_bytes(request)
    (tmp_path / "resp.der").write_bytes(served["responder"].respond(request, served["now"]))
    chain = served["record"]["chain_path"]
    issuer_pem = tmp_path / "issuer.pem"
    issuer_pem.write_bytes(served["issuer"].cert.public_bytes(serialization.Encoding.PEM))
    # No -cert: with it openssl would build a request of its own, with a nonce of its own.
    done = run_tool("openssl", "ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der", "-issuer",
                    issuer_pem, "-CAfile", chain)
    text = done.stdout + done.stderr
    assert "Response verify OK" in text and "nonce" not in text.lower(), text
    # The negative control: the answer to a different request's nonce is caught by openssl.
    other = _request(served, (x509.OCSPNonce(b"\x02" * 32), False))
    (tmp_path / "other.der").write_bytes(other)
    mismatch = run_tool("openssl", "ocsp", "-reqin", tmp_path / "other.der", "-respin", tmp_path / "resp.der",
                        "-issuer", issuer_pem, "-CAfile", chain)
    assert "nonce verify error" in (mismatch.stdout + mismatch.stderr).lower()
