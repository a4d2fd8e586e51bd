"""Is a certificate revoked? ``audit`` and ``check`` ask here.

Three sources, in this order: privca's own ledger, for the certificates privca issued (it knows at once, before
any CRL is published); the CRL that the certificate's CRL Distribution Points name; and, when there is no CRL to
read, the OCSP responder its Authority Information Access names. A CRL or OCSP answer counts only when its
signature verifies with the issuer's key. Every network wait is bounded by ``timeout``; one CRL is fetched once
per run however many certificates name it; ``offline`` skips the network. Nothing here raises for what a peer
sends: an unreachable or broken source becomes a finding that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from privca.common.findings import Finding, finding
from privca.common.signatures import signature_valid
from privca.inspect.certinfo import CertInfo

MAX_CRL_BYTES = 32 * 1024 * 1024  # a CRL of a million entries is ~40 MB; anything past this is not worth waiting for
MAX_OCSP_BYTES = 64 * 1024
REMEDY = ("Replace it now: issue a new certificate (privca issue, or your CA), install it, and stop using this one; "
          "peers that check revocation refuse it.")

# (status, revoked_at, reason) as privca's ledger records a certificate, or None when privca did not issue it.
LedgerLookup = Callable[[x509.Certificate], "tuple[str, str | None, str | None] | None"]


@dataclass
class RevocationChecker:
    """Revocation findings for certificates, with the CRLs fetched during one run kept for the next certificate."""

    timeout: float = 5.0
    offline: bool = False
    ledger: LedgerLookup | None = None
    _crls: dict[str, tuple[x509.CertificateRevocationList | None, str]] = field(default_factory=dict)

    def findings(self, info: CertInfo, issuer: CertInfo | None, now: datetime) -> list[Finding]:
        if self.ledger is not None:
            recorded = self.ledger(info.cert)
            if recorded is not None and recorded[0] in ("revoked", "hold"):
                status, revoked_at, reason = recorded
                what = "on hold (certificateHold)" if status == "hold" else f"revoked ({reason or 'unspecified'})"
                return [finding("critical", "revocation.revoked", f"{what} since {revoked_at}, as privca's ledger "
                                "records", "privca ledger", verdict="revoked", remedy=REMEDY)]
        if self.offline:
            return [finding("info", "revocation.unchecked", "CRL and OCSP not consulted (--offline)", "RFC5280")]
        if info.self_issued:
            return []  # a root is trusted or not; nothing above it revokes it
        if issuer is None:
            return [finding("info", "revocation.unchecked", "CRL and OCSP not consulted: the issuing CA was not "
                            "given, so no answer could be verified", "RFC5280")]
        crl_urls, ocsp_urls = _urls(info.cert)
        notes: list[str] = []
        for url in crl_urls:
            result = self._from_crl(url, info, issuer, now, notes)
            if result is not None:
                return result
        for url in ocsp_urls:
            result = self._from_ocsp(url, info, issuer, notes)
            if result is not None:
                return result
        if not crl_urls and not ocsp_urls:
            notes.append("it names no CRL (CDP) and no OCSP responder (AIA)")
        return [finding("info", "revocation.unchecked", "revocation status unknown: " + "; ".join(notes),
                                "RFC5280")]

    # --- CRL -------------------------------------------------------------------------------------------------

    def _crl(self, url: str) -> tuple[x509.CertificateRevocationList | None, str]:
        if url not in self._crls:
            data, problem = _fetch(url, None, self.timeout, MAX_CRL_BYTES)
            crl = None
            if data is not None:
                try:
                    crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN")
                           else x509.load_der_x509_crl(data))
                except ValueError:
                    problem = f"{url}: not a CRL"
            self._crls[url] = (crl, problem)
        return self._crls[url]

    def _from_crl(self, url: str, info: CertInfo, issuer: CertInfo, now: datetime,
                  notes: list[str]) -> list[Finding] | None:
        crl, problem = self._crl(url)
        if crl is None:
            notes.append(problem)
            return None
        if crl.issuer != info.cert.issuer or not _crl_signed_by(crl, issuer.cert):
            notes.append(f"{url}: the CRL is not signed by {issuer.label}; ignored")
            return None
        entry = crl.get_revoked_certificate_by_serial_number(info.cert.serial_number)
        if entry is not None:
            reason = _crl_reason(entry)
            return [finding("critical", "revocation.revoked", f"revoked ({reason}) on "
                            f"{entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC, says the CRL at {url}", "RFC5280",
                            verdict="revoked", remedy=REMEDY)]
        next_update = crl.next_update_utc
        if next_update is not None and next_update < now:
            # Expressway treats every certificate of a CA whose CRL has expired as revoked.
            return [finding("warning", "revocation.crl-expired", f"not on the CRL at {url}, but that CRL expired on "
                            f"{next_update:%Y-%m-%d %H:%M} UTC; peers that check CRLs (Expressway) treat the "
                            "certificate as revoked", "RFC5280", verdict="crl-expired",
                            remedy="Publish a fresh CRL at that URL (privca crl, then privca publish).")]
        return [finding("info", "revocation.good", f"not revoked: not on the CRL at {url} (thisUpdate "
                        f"{crl.last_update_utc:%Y-%m-%d %H:%M} UTC)", "RFC5280")]

    # --- OCSP ------------------------------------------------------------------------------------------------

    def _from_ocsp(self, url: str, info: CertInfo, issuer: CertInfo, notes: list[str]) -> list[Finding] | None:
        from cryptography.hazmat.primitives import hashes, serialization

        request = ocsp.OCSPRequestBuilder().add_certificate(info.cert, issuer.cert, hashes.SHA1()).build()
        data, problem = _fetch(url, request.public_bytes(serialization.Encoding.DER), self.timeout, MAX_OCSP_BYTES)
        if data is None:
            notes.append(problem)
            return None
        try:
            response = ocsp.load_der_ocsp_response(data)
            if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                notes.append(f"{url}: the OCSP responder answered {response.response_status.name.lower()}")
                return None
            if response.serial_number != info.cert.serial_number or not _ocsp_signed_for(response, issuer.cert):
                notes.append(f"{url}: the OCSP answer is not for this certificate or not signed for "
                             f"{issuer.label}; ignored")
                return None
            status = response.certificate_status
        except ValueError:
            notes.append(f"{url}: not an OCSP response")
            return None
        if status == ocsp.OCSPCertStatus.REVOKED:
            reason = response.revocation_reason.name if response.revocation_reason is not None else "unspecified"
            when = response.revocation_time_utc
            return [finding("critical", "revocation.revoked", f"revoked ({reason})"
                            + (f" on {when:%Y-%m-%d %H:%M} UTC" if when else "") + f", says the OCSP responder {url}",
                            "RFC5280", verdict="revoked", remedy=REMEDY)]
        if status == ocsp.OCSPCertStatus.GOOD:
            return [finding("info", "revocation.good", f"not revoked: the OCSP responder {url} answers good",
                            "RFC5280")]
        notes.append(f"{url}: the OCSP responder does not know it")
        return None


def _urls(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """HTTP(S) URLs of its CRL Distribution Points and OCSP responders (LDAP and others are not fetched)."""
    crl_urls: list[str] = []
    ocsp_urls: list[str] = []
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        for point in points:
            for name in point.full_name or []:
                if isinstance(name, x509.UniformResourceIdentifier):
                    crl_urls.append(name.value)
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = [item.access_location.value for item in access
                     if item.access_method == AuthorityInformationAccessOID.OCSP
                     and isinstance(item.access_location, x509.UniformResourceIdentifier)]
    except (x509.ExtensionNotFound, ValueError):
        pass
    web = ("http://", "https://")
    return ([u for u in crl_urls if u.lower().startswith(web)], [u for u in ocsp_urls if u.lower().startswith(web)])


def _fetch(url: str, body: bytes | None, timeout: float, limit: int) -> tuple[bytes | None, str]:
    """GET (or POST an OCSP request to) ``url``; the bytes, or None and why. Never raises for the network."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - http(s) only, checked above
            data = reply.read(limit + 1)
    except urllib.error.HTTPError as exc:
        return None, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{url}: unreachable ({str(reason)[:100]})"
    if len(data) > limit:
        return None, f"{url}: larger than {limit // 1024} KiB; not read"
    return data, ""


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return bool(crl.is_signature_valid(issuer.public_key()))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _ocsp_signed_for(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Signed by the issuer itself, or by a responder certificate the issuer signed for OCSP signing (RFC 6960
    4.2.2.2)."""
    if signature_valid(issuer.public_key(), response.signature, response.tbs_response_bytes,
               response.signature_hash_algorithm):
        return True
    for responder in response.certificates:
        try:
            delegated = ExtendedKeyUsageOID.OCSP_SIGNING in responder.extensions.get_extension_for_class(
                x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            delegated = False
        if (delegated and responder.issuer == issuer.subject
                and signature_valid(issuer.public_key(), responder.signature, responder.tbs_certificate_bytes,
                            responder.signature_hash_algorithm)
                and signature_valid(responder.public_key(), response.signature, response.tbs_response_bytes,
                            response.signature_hash_algorithm)):
            return True
    return False


def _crl_reason(entry: x509.RevokedCertificate) -> str:
    try:
        return str(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name)
    except x509.ExtensionNotFound:
        return "unspecified"
