"""Who may have a certificate, whatever the protocol: the decisions SCEP and EST share.

A new enrollment is authorised by a one-time challenge password for the profile (or waits in the approval queue
for an operator); a renewal by the certificate being renewed (issued by privca, valid, not revoked, same names,
same profile). Granted requests go through the same profile checks and the same signer as ``privca issue``, and
land in the ledger with their channel. Every decision is an event; a refusal records nothing else.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AttributeOID, NameOID

from privca.authority.ca import Issuer, fingerprint, serial_hex
from privca.authority.signer import PlannedCertificate, sign_and_record
from privca.enrollment import challenges
from privca.errors import CSRError, EnrollmentError, PrivcaError, ProfileError
from privca.enrollment.csr import read_csr
from privca.issuance.policy import check, request_from_certificate
from privca.issuance.profiles import Profile, load_profile
from privca.keys.keystore import CASecrets
from privca.common.names import printable, san_entries
from privca.ledger import certificates, events
from privca.ledger.records import CertificateStatus, IssuedCertificate
from privca.ledger.enrollment import (EnrollRequest, add_request, certificate_pem, certificate_presented,
                                      decide_request, request_by_transaction, same_request, use_challenge)
from privca.ledger.store import Store

if TYPE_CHECKING:
    from privca.ledger.db import Ledger

# Why a request was refused, in the terms both protocols answer with (SCEP's failInfo names, RFC 8894 3.2.1.4).
BAD_REQUEST = "badRequest"
BAD_CERT_ID = "badCertId"
BAD_ALG = "badAlg"
BAD_MESSAGE_CHECK = "badMessageCheck"
NOT_AUTHORIZED = "notAuthorized"  # no, a wrong, used or expired challenge: SCEP badRequest, EST 401
UNKNOWN_PROFILE = "unknownProfile"  # the request names no profile of this store: SCEP badRequest, EST 404

ISSUED, PENDING, REFUSED = "issued", "pending", "refused"


@dataclass(frozen=True)
class Settings:
    #: Requests without a challenge password wait for ``privca enroll approve`` instead of being refused.
    approval_queue: bool = False


@dataclass(frozen=True)
class Request:
    """One enrollment request as a protocol handed it over."""

    channel: str  # scep or est
    transaction_id: str
    profile: str
    csr_der: bytes
    requester_der: bytes | None = None  # the certificate a SCEP reply is encrypted to
    presented: x509.Certificate | None = None  # a certificate privca issued, authorising a renewal
    password: str | None = None  # EST: HTTP Basic; SCEP: None, the CSR's challengePassword is read


@dataclass(frozen=True)
class Outcome:
    status: str
    cert_der: bytes | None = None
    fail: str = BAD_REQUEST
    reason: str = ""


def csr_challenge(csr: x509.CertificateSigningRequest) -> str | None:
    """The CSR's challengePassword attribute (PKCS#9), where SCEP clients put the one-time password."""
    try:
        value = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except (x509.AttributeNotFound, ValueError):
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text.strip() or None


def _no_secrets() -> Any:
    raise EnrollmentError("the issuing CA changed while privca serve was running; restart it to unlock the new CA")


class Enroller:
    """Decides and issues enrollment requests for one store; safe to call from many threads at once."""

    def __init__(self, store_path: Path, issuer: Issuer, settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        self.store_path, self.issuer, self.settings, self.clock = store_path, issuer, settings, clock
        self._profiles: dict[str, Profile] = {}
        self._local = threading.local()
        self._deciding = threading.Lock()

    def store(self) -> Store:
        """This thread's open store. SQLite connections stay in the thread that opened them, and each worker thread
        keeps its own open: opening a ledger and closing it (the last connection's WAL checkpoint) cost more than
        an enrollment's own queries. Reopened in a forked worker, never shared across the fork."""
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():
            held = (os.getpid(), Store(self.store_path))
            self._local.held = held
        store: Store = held[1]
        return store

    def profile(self, store: Store, name: str) -> Profile:
        if name not in self._profiles:
            chosen = load_profile(name, store.profiles_dir)
            if chosen.name == "scep-ra":
                raise ProfileError("profile scep-ra: not for enrollment")
            self._profiles[name] = chosen
        return self._profiles[name]

    def enroll(self, request: Request) -> Outcome:
        # One decision at a time in this process. The ledger takes one writer at a time anyway; left to SQLite,
        # threads that find it busy sleep in growing steps and wake late (p99 of 1.9 s at 16 devices at once,
        # benchmarks/scep_bench.py), while the work they would overlap holds the GIL.
        with self._deciding:
            return self._enroll(self.store(), request, self.clock())

    def poll(self, channel: str, transaction_id: str) -> Outcome:
        """Where a request stands (SCEP CertPoll / GetCertInitial)."""
        store = self.store()
        existing = request_by_transaction(store.ledger, channel, transaction_id)
        if existing is None:
            return Outcome(REFUSED, fail=BAD_CERT_ID, reason=f"transaction {printable(transaction_id)}: unknown")
        return self._follow_up(store, existing, self.clock())

    # --- decisions --------------------------------------------------------------------------------------------

    def _enroll(self, store: Store, request: Request, now: datetime) -> Outcome:
        renews = serial_hex(request.presented.serial_number) if request.presented is not None else None
        existing = same_request(store.ledger, request.channel, request.transaction_id, request.csr_der, renews)
        if existing is not None:  # a retry of the same request (IOS resends): the same answer, nothing new
            return self._follow_up(store, existing, now)
        source = f"{request.channel} transaction {printable(request.transaction_id)}"
        try:
            device_csr = read_csr(request.csr_der, source)
        except CSRError as exc:
            return self._refuse(store, request, now, BAD_REQUEST, exc.message)
        csr = device_csr.csr
        subject = _subject_text(csr)
        try:
            profile = self.profile(store, request.profile)
        except ProfileError as exc:
            return self._refuse(store, request, now, UNKNOWN_PROFILE, exc.message, subject)
        if not device_csr.signature_ok:
            return self._refuse(store, request, now, BAD_REQUEST, "the CSR signature does not verify", subject)
        if request.presented is not None:
            return self._renew(store, request, csr, profile, now, subject)
        password = request.password if request.password is not None else csr_challenge(csr)
        if password is None:
            if self.settings.approval_queue:
                return self._queue(store, request, csr, profile, now, subject)
            return self._refuse(store, request, now, NOT_AUTHORIZED, "no challenge password; create one with: privca "
                                f"enroll challenge --profile {profile.name}", subject)
        found = challenges.find(store, password)
        problem = challenges.problem_with(found, profile.name, now)
        if problem is not None or found is None:
            return self._refuse(store, request, now, NOT_AUTHORIZED, problem or "wrong challenge password", subject)
        supplied = [general_name(name) for name in found.names]
        checked, problems = check(csr, request.csr_der, source, profile, supplied_names=supplied or None,
                                  signature_checked=True)
        if checked is None:
            return self._refuse(store, request, now, BAD_REQUEST, "; ".join(problems), subject)
        if found.names:
            outside = _names_outside(checked.subject, [entry.value for entry in checked.sans], found.names)
            if outside:
                return self._refuse(store, request, now, BAD_REQUEST, f"challenge #{found.id} is bound to "
                                    f"{', '.join(found.names)}; the request names {', '.join(outside)}", subject)
        challenge_id = found.id

        def record(ledger: "Ledger", rows: list[IssuedCertificate]) -> None:
            if not use_challenge(ledger, challenge_id, now, f"{request.channel}:{request.transaction_id}"):
                raise EnrollmentError(f"challenge #{challenge_id}: used by another request a moment ago")
            _record_issued(ledger, request, checked.subject, rows[0], now)

        planned = PlannedCertificate(checked, None, None, None, csr_der=request.csr_der)
        return self._sign(store, request, planned, "issue", record, now, subject)

    def _renew(self, store: Store, request: Request, csr: x509.CertificateSigningRequest, profile: Profile,
               now: datetime, subject: str) -> Outcome:
        assert request.presented is not None
        presented = request.presented
        serial = serial_hex(presented.serial_number)
        found = certificate_presented(store.ledger, serial, fingerprint(presented))
        if found is None:
            return self._refuse(store, request, now, BAD_CERT_ID, f"certificate {serial} was not issued by this CA",
                                subject)
        if found.status is not CertificateStatus.VALID:
            reason = found.revocation_reason.value if found.revocation_reason else "no reason"
            return self._refuse(store, request, now, BAD_CERT_ID, f"certificate {serial} is {found.status.value} "
                                f"({reason}); it cannot renew itself", subject)
        if found.not_after <= now:
            return self._refuse(store, request, now, BAD_CERT_ID, f"certificate {serial} expired on "
                                f"{found.not_after:%Y-%m-%dT%H:%M:%SZ}; enroll again "
                                "with a challenge password", subject)
        if found.profile != profile.name:
            return self._refuse(store, request, now, BAD_REQUEST, f"certificate {serial} was issued under profile "
                                f"{found.profile}, not {profile.name}", subject)
        renewed = [s.serial for s in certificates.successors(store.ledger, serial)
                   if s.status is CertificateStatus.VALID]
        if renewed:
            return self._refuse(store, request, now, BAD_REQUEST, f"certificate {serial} was already renewed by "
                                f"{renewed[0]}", subject)
        old = found.certificate
        problems = _renamed(csr, old)
        checked, policy_problems = request_from_certificate(
            old, csr.public_key(), f"{request.channel} renewal of {serial}", profile,
            csr_sha256=hashlib.sha256(request.csr_der).hexdigest())
        problems += policy_problems
        if problems or checked is None:
            return self._refuse(store, request, now, BAD_REQUEST, "; ".join(problems), subject)

        def record(ledger: "Ledger", rows: list[IssuedCertificate]) -> None:
            if [s.serial for s in certificates.successors(ledger, serial)
                    if s.status is CertificateStatus.VALID] != [rows[0].serial]:
                raise EnrollmentError(f"certificate {serial}: renewed by another request a moment ago")
            _record_issued(ledger, request, checked.subject, rows[0], now, renews=serial)

        planned = PlannedCertificate(checked, None, None, None, csr_der=request.csr_der, replaces=serial)
        return self._sign(store, request, planned, "renew", record, now, subject)

    def _queue(self, store: Store, request: Request, csr: x509.CertificateSigningRequest, profile: Profile,
               now: datetime, subject: str) -> Outcome:
        sans = _csr_sans(csr)
        ledger = store.ledger
        with ledger.write():
            request_id = add_request(ledger, channel=request.channel, transaction_id=request.transaction_id,
                                     profile=profile.name, subject=subject, sans=sans, csr_der=request.csr_der,
                                     requester_der=request.requester_der, status="pending", now=now)
            events.record(ledger, now, "enroll-pending", {"request": request_id, "channel": request.channel,
                                                        "transaction": request.transaction_id,
                                                        "profile": profile.name, "subject": subject, "sans": sans})
        return Outcome(PENDING, reason=f"request #{request_id} waits for: privca enroll approve {request_id}")

    def _follow_up(self, store: Store, existing: EnrollRequest, now: datetime) -> Outcome:
        if existing.status == "issued" and existing.serial is not None:
            pem = certificate_pem(store.ledger, existing.serial)
            if pem is not None:
                return Outcome(ISSUED, x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER))
        if existing.status == "pending":
            return Outcome(PENDING, reason=f"request #{existing.id} waits for an operator")
        if existing.status == "rejected":
            return Outcome(REFUSED, fail=BAD_REQUEST, reason=f"request #{existing.id} was rejected by an operator")
        return self._issue_approved(store, existing, now)

    def _issue_approved(self, store: Store, existing: EnrollRequest, now: datetime) -> Outcome:
        request = Request(existing.channel, existing.transaction_id, existing.profile, existing.csr_der,
                          existing.requester_der)
        try:
            profile = self.profile(store, existing.profile)
            device_csr = read_csr(existing.csr_der, f"request #{existing.id}")
        except PrivcaError as exc:
            return Outcome(REFUSED, fail=BAD_REQUEST, reason=exc.message)
        csr = device_csr.csr
        subject = _subject_text(csr)
        supplied = [general_name(name) for name in existing.sans] if not _csr_sans(csr) else []
        checked, problems = check(csr, existing.csr_der, f"request #{existing.id}", profile,
                                  supplied_names=supplied or None, signature_checked=device_csr.signature_ok)
        if checked is None:
            return self._refuse(store, request, now, BAD_REQUEST, "; ".join(problems), subject)

        def record(ledger: "Ledger", rows: list[IssuedCertificate]) -> None:
            if not decide_request(ledger, existing.id, "issued", now, from_status="approved",
                                  serial=rows[0].serial):
                raise EnrollmentError(f"request #{existing.id}: issued by another poll a moment ago")

        planned = PlannedCertificate(checked, None, None, None, csr_der=existing.csr_der)
        return self._sign(store, request, planned, "issue", record, now, subject)

    def _sign(self, store: Store, request: Request, planned: PlannedCertificate, action: str,
              record: Callable[["Ledger", list[IssuedCertificate]], None], now: datetime, subject: str) -> Outcome:
        captured: list[IssuedCertificate] = []

        def in_transaction(ledger: "Ledger", rows: list[IssuedCertificate]) -> None:
            record(ledger, rows)
            captured.extend(rows)

        try:
            sign_and_record(store, [planned], CASecrets(passphrase=_no_secrets, pin=_no_secrets), now=now,
                            action=action, in_transaction=in_transaction, channel=request.channel,
                            issuer=self.issuer)
        except PrivcaError as exc:
            return self._refuse(store, request, now, BAD_REQUEST, exc.one_line(), subject)
        return Outcome(ISSUED, captured[0].certificate.public_bytes(Encoding.DER))

    def _refuse(self, store: Store, request: Request, now: datetime, fail: str, reason: str,
                subject: str | None = None) -> Outcome:
        """Answer no, and record nothing but the refusal event (never the password, never the CSR)."""
        details: dict[str, Any] = {"channel": request.channel, "transaction": request.transaction_id,
                                   "profile": request.profile, "reason": reason, "fail": fail}
        if subject is not None:
            details["subject"] = subject
        ledger = store.ledger
        with ledger.write():
            events.record(ledger, now, "enroll-refuse", details)
        return Outcome(REFUSED, fail=fail, reason=reason)


def make_enroller(store_path: Path, secrets: CASecrets, *, approval_queue: bool,
                  clock: Callable[[], datetime]) -> Enroller:
    """An Enroller with the active issuing CA unlocked (``secrets`` asked for here, once)."""
    from privca.authority.ca import active_issuing, load_issuer

    store = Store(store_path)
    try:
        issuer = load_issuer(store, active_issuing(store), secrets)
    finally:
        store.close()
    return Enroller(store_path, issuer, Settings(approval_queue=approval_queue), clock)


def refuse_unreadable(store_path: Path, channel: str, transaction_id: str, profile: str, fail: str, reason: str,
                      now: datetime) -> Outcome:
    """The refusal event of a message refused before it reached a decision (a bad signature, a cipher not
    accepted): the protocol layer answers it, the ledger still says it happened."""
    store = Store(store_path)
    try:
        ledger = store.ledger
        with ledger.write():
            events.record(ledger, now, "enroll-refuse", {"channel": channel, "transaction": transaction_id,
                                                       "profile": profile, "reason": reason, "fail": fail})
    finally:
        store.close()
    return Outcome(REFUSED, fail=fail, reason=reason)


def _record_issued(ledger: "Ledger", request: Request, subject: x509.Name, issued: IssuedCertificate,
                   now: datetime, renews: str | None = None) -> None:
    add_request(ledger, channel=request.channel, transaction_id=request.transaction_id, profile=issued.profile,
                subject=subject.rfc4514_string(), sans=list(issued.sans), csr_der=request.csr_der,
                requester_der=request.requester_der, status="issued", now=now, serial=issued.serial,
                renews=renews)


def _subject_text(csr: x509.CertificateSigningRequest) -> str:
    try:
        return printable(csr.subject.rfc4514_string(), limit=200)
    except Exception:
        return "(unreadable subject)"


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except Exception:
        return []
    return [entry.value for entry in san_entries(extension.value)]


def general_name(text: str) -> x509.GeneralName:
    import ipaddress

    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)


def _names_outside(subject: x509.Name, sans: list[str], allowed: tuple[str, ...]) -> list[str]:
    """The CN and SANs of a request that a challenge bound to ``allowed`` does not cover."""
    wanted = {name.lower() for name in allowed}
    names = [str(attribute.value) for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] + sans
    return [printable(name) for name in names if name.lower() not in wanted]


def _renamed(csr: x509.CertificateSigningRequest, old: x509.Certificate) -> list[str]:
    """A renewal keeps the names: a CN or SANs in the CSR that differ from the certificate's are refused."""
    problems = []
    csr_cn = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    old_cn = [str(a.value) for a in old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if csr_cn and [cn.lower() for cn in csr_cn] != [cn.lower() for cn in old_cn]:
        problems.append(f"the CSR names CN {printable(csr_cn[0])}; the certificate being renewed is for "
                        f"{printable(old_cn[0] if old_cn else '(no CN)')}")
    csr_sans = {name.lower() for name in _csr_sans(csr)}
    try:
        old_sans = {entry.value.lower() for entry in
                    san_entries(old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)}
    except x509.ExtensionNotFound:
        old_sans = set()
    if csr_sans and csr_sans != old_sans:
        problems.append(f"the CSR asks for SANs {', '.join(sorted(csr_sans))}; a renewal keeps "
                        f"{', '.join(sorted(old_sans)) or 'none'}")
    return problems
