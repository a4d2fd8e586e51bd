"""Chain building: find each certificate's issuer among the certificates seen and the public root stores.

An issuer is accepted only when its subject matches the certificate's issuer name and its key verifies the
certificate's signature (RFC 5280 6.1.3 (a)(1) and (a)(4)); a name match whose signature fails is reported as a
broken link. Lookups are memoised per certificate, so 10,000 leaves under one intermediate verify each leaf once
and the intermediate once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from privca.inspect.certinfo import CertInfo

if TYPE_CHECKING:
    from privca.inspect.publictrust import PublicRoots

MAX_DEPTH = 8  # a UC chain has 2-4 certificates; anything deeper is a loop or a mistake


@dataclass(frozen=True)
class Link:
    """The result of looking for a certificate's issuer.

    ``status``: ``self-signed`` (a root that signed itself), ``found``, ``missing`` (no certificate with the
    issuer's name was given) or ``bad-signature`` (certificates with that name exist but none signed it).
    ``store`` names the public store an issuer came from, when it was not among the certificates given.
    """

    status: str
    issuer: CertInfo | None = None
    store: str | None = None


@dataclass(frozen=True)
class ChainPath:
    """``certs`` from the certificate up as far as issuers were found; ``end`` says how the path ends."""

    certs: tuple[CertInfo, ...]
    end: Link

    @property
    def top(self) -> CertInfo:
        return self.certs[-1]

    @property
    def complete(self) -> bool:
        return self.end.status == "self-signed"

    @property
    def cas(self) -> tuple[CertInfo, ...]:
        return self.certs[1:]

    def labels(self) -> list[str]:
        """Names up the chain, including a public root that came from a store rather than from the targets."""
        labels = [c.label for c in self.certs]
        anchor = self.end.issuer
        if self.end.store and anchor is not None and anchor not in self.certs:
            labels.append(anchor.label)
        return labels


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key match ``cert``'s issuer name and signature.

    Signatures with algorithms cryptography's own check refuses (SHA-1) are verified directly, so that an old
    certificate is reported as SHA-1 signed rather than as a broken chain.
    """
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        _verify_signature(cert, issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _verify_signature(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, cert.signature_algorithm_parameters,  # type: ignore[arg-type]
                   cert.signature_hash_algorithm)  # type: ignore[arg-type]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, cert.signature_algorithm_parameters)  # type: ignore[arg-type]
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(cert.signature, cert.tbs_certificate_bytes)
    else:
        raise TypeError("unsupported issuer key")


class Pool:
    """Certificates that may issue others: those given (files, endpoints, --chain) and the public roots."""

    def __init__(self, infos: list[CertInfo] | None = None, public: "PublicRoots | None" = None) -> None:
        self._by_subject: dict[x509.Name, list[CertInfo]] = {}
        self._seen: set[str] = set()
        self._links: dict[str, Link] = {}
        self.public = public
        for info in infos or []:
            self.add(info)

    def add(self, info: CertInfo) -> None:
        if info.sha256 in self._seen:
            return
        self._seen.add(info.sha256)
        self._by_subject.setdefault(info.cert.subject, []).append(info)

    def issuer_of(self, info: CertInfo) -> Link:
        link = self._links.get(info.sha256)
        if link is None:
            link = self._links[info.sha256] = self._find_issuer(info)
        return link

    def _find_issuer(self, info: CertInfo) -> Link:
        cert = info.cert
        if info.self_issued and signed_by(cert, cert):
            return Link("self-signed", info)
        candidates = [c for c in self._by_subject.get(cert.issuer, []) if c.sha256 != info.sha256]
        # Try the candidate whose key identifier matches first (RFC 5280 4.2.1.1), then the others.
        candidates.sort(key=lambda c: c.subject_key_id != info.authority_key_id or c.subject_key_id is None)
        for candidate in candidates:
            if signed_by(cert, candidate.cert):
                return Link("found", candidate)
        if self.public is not None:
            for candidate, store in self.public.issuer_candidates(cert):
                if signed_by(cert, candidate.cert):
                    return Link("found", candidate, store)
        if candidates or (self.public is not None and self.public.issuer_candidates(cert)):
            return Link("bad-signature")
        return Link("missing")

    def path(self, info: CertInfo) -> ChainPath:
        certs = [info]
        seen = {info.sha256}
        while True:
            link = self.issuer_of(certs[-1])
            if link.status != "found" or link.issuer is None:
                return ChainPath(tuple(certs), link)
            if link.issuer.sha256 in seen or len(certs) >= MAX_DEPTH:
                return ChainPath(tuple(certs), Link("missing"))  # a loop of cross-signatures: treat as incomplete
            certs.append(link.issuer)
            seen.add(link.issuer.sha256)
            if link.store is not None:  # reached a public root from a store: it is the anchor
                return ChainPath(tuple(certs), Link("self-signed", link.issuer, link.store))


def order_problem(certs: list[CertInfo]) -> str | None:
    """Why a file's or a served chain's order is wrong, or None.

    RFC 8446 4.4.2 and RFC 5246 7.4.2: the sender's certificate first, then each certificate directly certifying
    the one before it. Cisco Meeting Server wants the same order in its bundles (TAC 221698).
    """
    for index in range(1, len(certs)):
        if not signed_by(certs[index - 1].cert, certs[index].cert):
            before = certs[index - 1].label
            return (f"certificate {index + 1} ({certs[index].label}) does not issue certificate {index} ({before}); "
                    "order: the certificate first, then each issuer in turn up to the root")
    return None


__all__ = ["ChainPath", "Link", "Pool", "order_problem", "signed_by"]
