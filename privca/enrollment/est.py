"""EST (RFC 7030) over HTTPS, independent of the web framework: (operation, label, request facts) -> response.

Paths: ``/.well-known/est/<operation>`` for the default profile and ``/.well-known/est/<label>/<operation>`` where
the label is a profile name. Operations: ``cacerts`` (the issuing CA and its root, certs-only CMS), ``csrattrs``
(what the profile wants in a CSR), ``simpleenroll`` (authorised by HTTP Basic whose password is a one-time
challenge from ``privca enroll challenge``) and ``simplereenroll`` (authorised by the TLS client certificate being
renewed). Bodies travel as base64 (RFC 7030 4.1.3, 4.2.3; RFC 8951 clarifies that the transfer encoding is
always base64, whatever header the client sends).

EST needs TLS: the password travels in the request and the renewal is authorised by the TLS handshake, so a
request that arrived over plain HTTP is refused (and recorded as refused). Every decision goes through the same
``Enroller`` as SCEP, with channel ``est``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from privca.enrollment import pkimessage as pm
from privca.enrollment.enroller import (BAD_CERT_ID, BAD_REQUEST, ISSUED, NOT_AUTHORIZED, PENDING,
                                        UNKNOWN_PROFILE, Enroller, Request, refuse_unreadable)
from privca.enrollment.scep import Response
from privca.enrollment.csr import read_csr
from privca.errors import CSRError, PrivcaError

if TYPE_CHECKING:
    from privca.issuance.profiles import Profile

CHANNEL = "est"
OPERATIONS = ("cacerts", "csrattrs", "simpleenroll", "simplereenroll")
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
_BASE64 = {"Content-Transfer-Encoding": "base64"}

# Key types of a profile as CSR attributes (RFC 7030 4.5.2): rsaEncryption, or id-ecPublicKey with the curve.
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_CURVES = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34", "secp521r1": "1.3.132.0.35"}
_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"


class _OidValues(core.SetOf):  # type: ignore[misc]  # asn1crypto ships no types
    _child_spec = core.ObjectIdentifier


class _OidAttribute(core.Sequence):  # type: ignore[misc]  # asn1crypto ships no types
    """An Attribute whose values are object identifiers (id-ecPublicKey with its curve, RFC 7030 4.5.2)."""

    _fields = [("type", core.ObjectIdentifier), ("values", _OidValues)]


class _AttrOrOID(core.Choice):  # type: ignore[misc]  # asn1crypto ships no types
    """RFC 7030 4.5.2: ``AttrOrOID ::= CHOICE (oid OBJECT IDENTIFIER, attribute Attribute)``."""

    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _OidAttribute)]


class _CsrAttrs(core.SequenceOf):  # type: ignore[misc]  # asn1crypto ships no types
    _child_spec = _AttrOrOID


def csr_attributes(profile: "Profile") -> bytes | None:
    """What a CSR under ``profile`` should carry: its preferred key type and a signature algorithm; None when the
    profile states no key type (then the answer is 204 No Content)."""
    if not profile.key_allowed:
        return None
    kind, _, size = profile.key_allowed[0].partition(":")
    items: list[object] = []
    if kind == "rsa":
        items += [_AttrOrOID(name="oid", value=core.ObjectIdentifier(_RSA_ENCRYPTION)),
                  _AttrOrOID(name="oid", value=core.ObjectIdentifier(_SHA256_WITH_RSA))]
    elif kind == "ec" and size in _CURVES:
        curve = _OidAttribute({"type": _EC_PUBLIC_KEY, "values": [_CURVES[size]]})
        items += [_AttrOrOID(name="attribute", value=curve),
                  _AttrOrOID(name="oid", value=core.ObjectIdentifier(_ECDSA_WITH_SHA256))]
    else:
        return None
    return bytes(_CsrAttrs(items).dump())


@dataclass(frozen=True)
class EstRequest:
    """What the HTTP layer hands over: the facts EST decides on."""

    method: str
    secure: bool  # arrived over TLS
    authorization: str | None  # the Authorization header
    client_cert_der: bytes | None  # the TLS client certificate, verified by the handshake against privca's CAs
    body: bytes


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, "text/plain; charset=utf-8", (message + "\n").encode(), headers or {})


def _basic_password(authorization: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header (the user name is not used: the password is the
    credential); None when there is none or it is not Basic."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(":")
    return password.strip() or None if colon else None


def _decode_body(body: bytes) -> bytes | None:
    """The DER inside a base64 body (line breaks allowed); None when it is not base64."""
    text = b"".join(body.split())
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _wrapped(der: bytes) -> bytes:
    """Base64 on one line: strongSwan's EST client decodes the body four characters at a time and takes a line
    break for data, so an answer in MIME lines reaches it corrupted; every other client reads one line too."""
    return base64.b64encode(der)


class EstService:
    """Answers EST requests for every profile, with the issuing CA's chain."""

    def __init__(self, enroller: Enroller, ca_chain: list[x509.Certificate], default_profile: str | None,
                 store_path: Path, clock: Callable[[], datetime]) -> None:
        self.enroller, self.default_profile = enroller, default_profile
        self.store_path, self.clock = store_path, clock
        self.ca_certs = pm.certs_only([cert.public_bytes(Encoding.DER) for cert in ca_chain])

    def handle(self, operation: str, label: str | None, request: EstRequest) -> Response:
        profile = label or self.default_profile
        if operation not in OPERATIONS:
            return _text(404, f"EST operation {operation[:40]!r}: not one of {', '.join(OPERATIONS)}")
        if profile is None:
            return _text(404, "no default EST profile: use /.well-known/est/<profile>/" + operation)
        enrolling = operation in ("simpleenroll", "simplereenroll")
        if request.method != ("POST" if enrolling else "GET") and not (request.method == "HEAD" and not enrolling):
            return _text(405, f"{operation}: use {'POST' if enrolling else 'GET'}", {"Allow": "POST" if enrolling
                                                                                     else "GET"})
        if not request.secure:
            if enrolling:  # a password may just have crossed the network in clear: say so in the ledger
                refuse_unreadable(self.store_path, CHANNEL, "-", profile, NOT_AUTHORIZED,
                                  "EST request over plain HTTP; EST needs HTTPS", self.clock())
            return _text(403, "EST needs HTTPS (the password and the renewing certificate travel in TLS)")
        if operation == "cacerts":
            return Response(200, CERTS_ONLY, _wrapped(self.ca_certs), dict(_BASE64))
        if operation == "csrattrs":
            chosen = self._profile(profile)
            if chosen is None:
                return _text(404, f"profile {profile[:60]!r}: no such profile")
            attributes = csr_attributes(chosen)
            if attributes is None:
                return Response(204, "application/csrattrs", b"")
            return Response(200, "application/csrattrs", _wrapped(attributes), dict(_BASE64))
        return self._enroll(operation, profile, request)

    def _profile(self, name: str) -> "Profile | None":
        try:
            return self.enroller.profile(self.enroller.store(), name)
        except PrivcaError:
            return None

    def _enroll(self, operation: str, profile: str, request: EstRequest) -> Response:
        renewing = operation == "simplereenroll"
        password = None if renewing else _basic_password(request.authorization)
        presented: x509.Certificate | None = None
        if renewing:
            if request.client_cert_der is None:
                return _text(401, "simplereenroll: present the certificate being renewed as the TLS client "
                             "certificate", {"WWW-Authenticate": f'Basic realm="privca EST {profile}"'})
            presented = x509.load_der_x509_certificate(request.client_cert_der)
        elif password is None:
            return _text(401, "simpleenroll: give the one-time password from privca enroll challenge as the HTTP "
                         "Basic password", {"WWW-Authenticate": f'Basic realm="privca EST {profile}"'})
        csr_der = _decode_body(request.body)
        if csr_der is not None:
            try:
                read_csr(csr_der, f"{operation} body")
            except CSRError:
                csr_der = None
        # A retry of the same CSR with the same credential is the same transaction (same answer, nothing new);
        # another password or certificate with that CSR is a new decision.
        credential = (password or "").encode() + (request.client_cert_der or b"")
        transaction = hashlib.sha256(b"est\0" + (csr_der or request.body) + b"\0" + credential).hexdigest()[:32]
        if csr_der is None:
            refuse_unreadable(self.store_path, CHANNEL, transaction, profile, BAD_REQUEST,
                              f"{operation}: the body is not a base64 PKCS#10 request", self.clock())
            return _text(400, f"{operation}: the body is not a base64 PKCS#10 request")
        outcome = self.enroller.enroll(Request(CHANNEL, transaction, profile, csr_der, presented=presented,
                                               password=password))
        if outcome.status == ISSUED and outcome.cert_der is not None:
            return Response(200, CERTS_ONLY, _wrapped(pm.certs_only([outcome.cert_der])), dict(_BASE64))
        if outcome.status == PENDING:
            return _text(202, outcome.reason, {"Retry-After": "60"})
        if outcome.fail in (NOT_AUTHORIZED, BAD_CERT_ID):
            return _text(401, f"{operation}: {outcome.reason}",
                         {"WWW-Authenticate": f'Basic realm="privca EST {profile}"'})
        if outcome.fail == UNKNOWN_PROFILE:
            return _text(404, f"{operation}: {outcome.reason}")
        if outcome.reason.startswith("the CSR signature"):
            return _text(400, f"{operation}: {outcome.reason}")
        return _text(403, f"{operation}: {outcome.reason}")


def make_est_service(store_path: Path, enroller: Enroller, default_profile: str | None,
                     clock: Callable[[], datetime]) -> EstService:
    """The EST service over ``enroller`` (its issuing CA unlocked already); cacerts answers with its chain."""
    from privca.ledger import cas
    from privca.ledger.store import Store

    store = Store(store_path)
    try:
        chain = [ca.certificate for ca in cas.chain(store.ledger, cas.by_id(store.ledger, enroller.issuer.id))]
    finally:
        store.close()
    return EstService(enroller, chain, default_profile, store_path, clock)
