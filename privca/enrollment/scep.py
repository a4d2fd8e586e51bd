"""SCEP (RFC 8894) over HTTP, independent of the web framework: (method, path, query, body) -> response.

Paths: ``/scep/<profile>`` (optionally followed by ``/pkiclient.exe`` or ``/cgi-bin/pkiclient.exe``, which IOS
appends to its ``enrollment url``) and ``/cgi-bin/pkiclient.exe`` for the default profile. Operations:
GetCACaps, GetCACert (RA certificate, issuing CA, root), GetNextCACert while a rotation is under way (the issuing
CA that took over from the one this service signs with), PKIOperation by GET (base64 in the ``message``
parameter, as IOS sends it over HTTP/1.0) and by POST (DER body).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from privca.enrollment import pkimessage as pm
from privca.enrollment.enroller import (BAD_ALG, BAD_CERT_ID, BAD_MESSAGE_CHECK, BAD_REQUEST, ISSUED,
                                        NOT_AUTHORIZED, PENDING, Enroller, Outcome, Request, refuse_unreadable)
from privca.enrollment.ra import RegistrationAuthority
from privca.errors import EnrollmentError

if TYPE_CHECKING:
    from privca.keys.keystore import CASecrets

CHANNEL = "scep"
PKI_MESSAGE_TYPE = "application/x-pki-message"
_FAIL_INFO = {BAD_ALG: pm.BAD_ALG, BAD_MESSAGE_CHECK: pm.BAD_MESSAGE_CHECK, BAD_REQUEST: pm.BAD_REQUEST,
              BAD_CERT_ID: pm.BAD_CERT_ID}
_FAIL_NAME = {code: name for name, code in _FAIL_INFO.items()}
_FAIL_INFO[NOT_AUTHORIZED] = pm.BAD_REQUEST  # SCEP has no failInfo of its own for a refused challenge


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", (message + "\n").encode())


def profile_of(path: str, default: str | None) -> str | None:
    """The profile a SCEP path names; None when the path is not a SCEP path (or names no profile)."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[-1].lower() == "pkiclient.exe":
        parts = parts[:-1]
        if parts and parts[-1].lower() == "cgi-bin":
            parts = parts[:-1]
        if not parts:
            return default
    if len(parts) == 2 and parts[0] == "scep":
        return parts[1]
    return None


class ScepService:
    """Answers SCEP requests for every profile, with one RA and the issuing CA's chain."""

    def __init__(self, enroller: Enroller, ra: RegistrationAuthority, ca_chain: list[x509.Certificate],
                 algorithms: pm.Algorithms, store_path: Path, clock: Callable[[], datetime]) -> None:
        self.enroller, self.ra, self.algorithms = enroller, ra, algorithms
        self.store_path, self.clock = store_path, clock
        ders = [ra.cert.public_bytes(Encoding.DER)] + [cert.public_bytes(Encoding.DER) for cert in ca_chain]
        self.ca_certs = pm.certs_only(ders)
        self.root_fingerprint = ca_chain[-1].fingerprint(hashes.SHA256()) if ca_chain else b""

    def capabilities(self) -> bytes:
        """GetCACaps (RFC 8894 3.5.2): exactly what this server does. SCEPStandard means AES, SHA-256 and POST;
        GetNextCACert only while there is a next CA to give."""
        caps = ["POSTPKIOperation", "Renewal", "SHA-256", "SHA-512", "AES", "DES3", "SCEPStandard"]
        if self.algorithms.allow_sha1:
            caps.insert(2, "SHA-1")
        if self.next_ca():
            caps.insert(0, "GetNextCACert")
        return ("\n".join(caps) + "\n").encode()

    def next_ca(self) -> list[bytes]:
        """The DER certificates a device needs to trust after the rotation under way: the issuing CA that took over
        from the one this service signs with, its root when that changed too, and its RA when one was made; empty
        when this service's issuing CA is still the active one."""
        from privca.authority.ca import active_issuing
        from privca.enrollment.ra import RA_PROFILE
        from privca.errors import PrivcaError
        from privca.ledger import cas
        from privca.ledger.enrollment import latest_valid_with_profile

        current = self.enroller.issuer.ca
        store = self.enroller.store()  # this thread's open ledger: GetCACaps comes with every enrollment
        try:
            successor = active_issuing(store)
        except PrivcaError:
            return []
        if successor.id == current.id or successor.generation <= current.generation:
            return []
        chain = cas.chain(store.ledger, successor)
        found = [chain[0].certificate]
        if chain[-1].certificate.fingerprint(hashes.SHA256()) != self.root_fingerprint:
            found.append(chain[-1].certificate)
        ra = latest_valid_with_profile(store.ledger, RA_PROFILE, self.clock())
        if ra is not None and ra.issuer_id == successor.id:
            found.append(ra.certificate)
        return [cert.public_bytes(Encoding.DER) for cert in found]

    def handle(self, method: str, profile: str, query: str, body: bytes) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        operation = params.get("operation", "")
        if operation == "GetCACaps":
            return Response(200, "text/plain", self.capabilities())
        if operation == "GetCACert":
            return Response(200, "application/x-x509-ca-ra-cert", self.ca_certs)
        if operation == "GetNextCACert":
            following = self.next_ca()
            if not following:
                return _text(404, "GetNextCACert: no rotation under way; the issuing CA of GetCACert stays")
            return Response(200, "application/x-x509-next-ca-cert",
                            pm.next_ca_answer(self.ra.cert, self.ra.key, following))
        if operation != "PKIOperation":
            return _text(400, f"operation {operation[:40]!r}: not supported (GetCACaps, GetCACert, GetNextCACert, "
                         "PKIOperation)")
        if method == "POST":
            der = body
        else:
            # IOS URL-encodes the base64 with %0A line breaks; clients that leave '+' unencoded turn it into ' '.
            text = params.get("message", "").replace(" ", "+").replace("\n", "").replace("\r", "")
            try:
                der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                return _text(400, "PKIOperation: the message parameter is not base64")
        return self.pki_operation(profile, der)

    def pki_operation(self, profile: str, der: bytes) -> Response:
        try:
            message = pm.parse(der, self.algorithms)
        except pm.RefusedMessage as refused:
            message = refused.pki_message
            outcome = refuse_unreadable(self.store_path, CHANNEL, message.transaction_id, profile,
                                        _FAIL_NAME[refused.fail_info], refused.message, self.clock())
            return self._reply(message, outcome, None)
        except EnrollmentError as exc:
            return _text(400, exc.message)
        if message.message_type not in (pm.PKCS_REQ, pm.RENEWAL_REQ, pm.CERT_POLL):
            return self._reply(message, Outcome("refused", fail=BAD_REQUEST), None)
        if message.envelope is None:
            return self._refused(message, profile, BAD_REQUEST, "the pkiMessage has no pkcsPKIEnvelope")
        try:
            content, cipher = pm.open_envelope(message.envelope, self.ra.cert, self.ra.key, self.algorithms)
        except pm.MessageRefused as refused:
            return self._refused(message, profile, _FAIL_NAME[refused.fail_info], refused.message)
        if message.message_type == pm.CERT_POLL:
            pm.issuer_and_subject(content)  # well formed; the transactionID says which request
            return self._reply(message, self.enroller.poll(CHANNEL, message.transaction_id), cipher)
        self_signed = message.signer.issuer == message.signer.subject
        if message.message_type == pm.RENEWAL_REQ and self_signed:
            return self._refused(message, profile, BAD_CERT_ID, "RenewalReq signed by a self-signed certificate; "
                                 "a renewal is signed with the certificate being renewed")
        request = Request(CHANNEL, message.transaction_id, profile, content, message.signer_der,
                          presented=None if self_signed else message.signer)
        return self._reply(message, self.enroller.enroll(request), cipher)

    def _refused(self, message: pm.PkiMessage, profile: str, fail: str, reason: str) -> Response:
        outcome = refuse_unreadable(self.store_path, CHANNEL, message.transaction_id, profile, fail, reason,
                                    self.clock())
        return self._reply(message, outcome, None)

    def _reply(self, message: pm.PkiMessage, outcome: Outcome, cipher: str | None) -> Response:
        if outcome.status == ISSUED and outcome.cert_der is not None and cipher is not None:
            # Answer with the cipher the client used: IOS fails with E_ENCRYPT_ALG_NOT_SUPPORTED otherwise.
            inner = pm.certs_only([outcome.cert_der])
            envelope = pm.envelope_to(message.signer, inner, cipher)
            body = pm.cert_rep(self.ra.cert, self.ra.key, message, pm.SUCCESS, envelope=envelope)
        elif outcome.status == PENDING:
            body = pm.cert_rep(self.ra.cert, self.ra.key, message, pm.PENDING)
        else:
            body = pm.cert_rep(self.ra.cert, self.ra.key, message, pm.FAILURE,
                               fail_info=_FAIL_INFO.get(outcome.fail, pm.BAD_REQUEST))
        return Response(200, PKI_MESSAGE_TYPE, body)


def make_scep_service(store_path: Path, secrets: "CASecrets", *, approval_queue: bool = False,
                      allow_sha1: bool = False, allow_des: bool = False,
                      clock: Callable[[], datetime], enroller: Enroller | None = None) -> ScepService:
    """Unlock the issuing CA (unless ``enroller`` has it already) and the RA once (``secrets`` asked for here) and
    return the ready service."""
    from privca.authority.ca import active_issuing
    from privca.ledger import cas
    from privca.enrollment.enroller import make_enroller
    from privca.enrollment.ra import load_ra
    from privca.ledger.store import Store

    if enroller is None:
        enroller = make_enroller(store_path, secrets, approval_queue=approval_queue, clock=clock)
    store = Store(store_path)
    try:
        issuing = active_issuing(store)
        ra = load_ra(store, secrets.get_passphrase(), clock())
        chain = [ca.certificate for ca in cas.chain(store.ledger, issuing)]
    finally:
        store.close()
    return ScepService(enroller, ra, chain, pm.Algorithms(allow_sha1=allow_sha1, allow_des=allow_des), store_path,
                       clock)
