"""OCSP responses (RFC 6960) answered live from the ledger and signed by the CA that issued the certificate.

The CA signs its own responses (RFC 6960 section 4.2.2.2: the responder may be the issuing CA); privca's CA
certificates carry digitalSignature for this. A CA answers only when it has an OCSP URL, that is when its
certificates point at a responder; a request about any other CA gets ``unauthorized``.

Requests may identify the issuer with SHA-1, SHA-256, SHA-384 or SHA-512 hashes (Cisco Expressway requires an
OCSP responder that supports SHA-256). The request's nonce is echoed (RFC 8954) when it is 1 to 32 octets;
a longer nonce or an unknown critical request extension gets malformedRequest (``request_problem``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from privca.authority.ca import Issuer, serial_hex, signature_hash
from privca.errors import PrivcaError
from privca.ledger import cas, certificates
from privca.ledger.db import Ledger
from privca.ledger.records import CAStatus, RevocationReason
from privca.revocation.revoke import reason_flag

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509

# A response is signed live from the ledger; clients may cache it this long. Short, so that a revocation reaches
# every peer within the hour even when it caches "good".
RESPONSE_VALIDITY = timedelta(hours=1)
CERT_ID_HASHES = ("sha1", "sha256", "sha384", "sha512")
MAX_REQUEST_BYTES = 16 * 1024  # an OCSP request for one certificate is ~100 bytes
MAX_NONCE_BYTES = 32  # RFC 8954 2.1: a nonce is 1 to 32 octets


def _public_key_bits(cert: "x509.Certificate") -> bytes:
    """The subjectPublicKey BIT STRING contents, which RFC 6960 4.1.1 hashes into issuerKeyHash."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    raise TypeError(f"unsupported CA key type {type(key).__name__}")


def cert_id_keys(cert: "x509.Certificate") -> list[tuple[str, bytes, bytes]]:
    """``(hash name, issuerNameHash, issuerKeyHash)`` for each hash a request may use to name this CA."""
    name, key = cert.subject.public_bytes(), _public_key_bits(cert)
    return [(algorithm, hashlib.new(algorithm, name).digest(), hashlib.new(algorithm, key).digest())
            for algorithm in CERT_ID_HASHES]


class Responder:
    """Answers OCSP requests for the given CAs. Thread-safe: the ledger is opened per request."""

    def __init__(self, ledger_path: "Path", issuers: Sequence[Issuer]) -> None:
        self.ledger_path = ledger_path
        self.issuers = {key: issuer for issuer in issuers for key in cert_id_keys(issuer.cert)}

    def respond(self, request_der: bytes, now: datetime) -> bytes:
        """The DER OCSPResponse for a DER OCSPRequest: a signed answer, or an unsuccessful status."""
        from cryptography import x509
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.x509 import ocsp

        try:
            request = ocsp.load_der_ocsp_request(request_der)
            key = (request.hash_algorithm.name, request.issuer_name_hash, request.issuer_key_hash)
            serial = request.serial_number
            extensions = list(request.extensions)
        except (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm, x509.DuplicateExtension):
            # Unparseable, several certificates in one request, a hash such as MD5 that is not offered, or the
            # same extension twice (two nonces: which one would be echoed?).
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if request_problem(extensions) is not None or serial < 0:
            # A negative serial names no certificate (RFC 5280 4.1.2.2) and cannot be put in a signed answer.
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        nonces = [ext.value for ext in extensions if isinstance(ext.value, x509.OCSPNonce)]
        issuer = self.issuers.get(key)
        if issuer is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            ledger = Ledger(self.ledger_path)
            try:
                # The CA's own status is read per request: a CA revoked while the service runs (for example
                # after a key compromise) must not go on vouching for its certificates with that key.
                issuer_status = cas.by_id(ledger, issuer.id).status
                found = certificates.status_under(ledger, issuer.id, serial_hex(serial))
            finally:
                ledger.close()
        except PrivcaError:
            return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        if issuer_status is CAStatus.REVOKED:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return sign_status(issuer, request.hash_algorithm, serial, found, now, nonce=nonces[0] if nonces else None)


def sign_status(
    issuer: Issuer, algorithm: Any, serial: int, found: "tuple[bool, datetime | None, RevocationReason | None] | None",
    now: datetime, validity: timedelta = RESPONSE_VALIDITY, nonce: "x509.OCSPNonce | None" = None,
) -> bytes:
    """The DER response signed by ``issuer`` for ``serial``, whose ledger status (``certificates.status_under``)
    is ``found``: good, revoked with time and reason (a hold is revoked with reason certificateHold), or unknown
    when None. The CertID names the issuer with ``algorithm`` (a ``cryptography`` hash instance)."""
    from cryptography.x509 import ocsp

    status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    if found is not None:
        revoked, revoked_at, why = found
        if revoked:
            status = ocsp.OCSPCertStatus.REVOKED
            reason = reason_flag(why)
        else:
            status = ocsp.OCSPCertStatus.GOOD
    name_hash, key_hash = issuer_hashes(issuer.cert, algorithm.name)
    this_update = now.replace(microsecond=0)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        name_hash, key_hash, serial, algorithm, status, this_update, this_update + validity, revoked_at, reason,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    if nonce is not None:
        builder = builder.add_extension(nonce, critical=False)
    return _der(builder.sign(issuer.key, signature_hash(issuer.key)))


def issuer_hashes(cert: "x509.Certificate", algorithm: str) -> tuple[bytes, bytes]:
    """``(issuerNameHash, issuerKeyHash)`` of the CA ``cert`` with the hash named ``algorithm`` (RFC 6960 4.1.1)."""
    return (hashlib.new(algorithm, cert.subject.public_bytes()).digest(),
            hashlib.new(algorithm, _public_key_bits(cert)).digest())


def request_problem(extensions: Sequence["x509.Extension[x509.ExtensionType]"]) -> str | None:
    """Why a request's extensions make it one privca must refuse (malformedRequest), or None.

    A critical extension privca does not understand asks for something it would not do (RFC 5280 4.2, RFC 6960
    4.4); a nonce must be 1 to 32 octets (RFC 8954 2.1), so a request cannot make the responder sign and send
    back kilobytes of its choosing.
    """
    from cryptography import x509

    for ext in extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            if not 1 <= len(ext.value.nonce) <= MAX_NONCE_BYTES:
                return f"nonce of {len(ext.value.nonce)} bytes (RFC 8954 allows 1 to {MAX_NONCE_BYTES})"
        elif ext.critical:
            return f"unknown critical request extension {ext.oid.dotted_string}"
    return None


def _der(response: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return bytes(response.public_bytes(Encoding.DER))


def _unsuccessful(status: Any) -> bytes:
    from cryptography.x509 import ocsp

    return _der(ocsp.OCSPResponseBuilder.build_unsuccessful(status))
