"""Pure certificate building: what goes into a certificate, with no disk, no clock and no keys.

Every certificate starts from ``base_builder`` (names, key, serial, validity, key identifiers); CAs and leaves
differ only in the extensions added after it. Leaf extensions come only from the profile, never from the CSR.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier

from privca.issuance.profiles import EXTENDED_KEY_USAGES, KEY_USAGES

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

    from privca.issuance.policy import IssuanceRequest
    from privca.issuance.profiles import Profile

# Backdating covers clock skew between privca and the device that checks the certificate.
BACKDATE = timedelta(minutes=5)


def validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    """notBefore and notAfter for ``days`` of validity: RFC 5280 counts notAfter as inclusive, so one second less."""
    not_before = now.replace(microsecond=0) - BACKDATE
    return not_before, not_before + timedelta(days=days) - timedelta(seconds=1)


def key_usage(names: tuple[str, ...] | list[str]) -> x509.KeyUsage:
    flags = {arg: False for arg in KEY_USAGES.values()}
    for name in names:
        flags[KEY_USAGES[name]] = True
    return x509.KeyUsage(**flags)


def base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: "CertificatePublicKeyTypes",
    serial: int,
    not_before: datetime,
    not_after: datetime,
    issuer_ski: x509.SubjectKeyIdentifier | None,
) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    # A self-signed root identifies its own key; everything else points at the issuer's key identifier.
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski or ski)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )


def revocation_extensions(
    crl_url: str | None, ocsp_url: str | None
) -> list[tuple[x509.ExtensionType, bool]]:
    """CRL distribution point and OCSP location (non-critical), where the issuing CA has them."""
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        extensions.append((x509.CRLDistributionPoints([point]), False))
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        extensions.append((x509.AuthorityInformationAccess([access]), False))
    return extensions


def revocation_pointers(
    builder: x509.CertificateBuilder, crl_url: str | None, ocsp_url: str | None
) -> x509.CertificateBuilder:
    """``builder`` with the CRL distribution point and OCSP location, where the issuing CA has them."""
    for extension, critical in revocation_extensions(crl_url, ocsp_url):
        builder = builder.add_extension(extension, critical=critical)
    return builder


def ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: "CertificatePublicKeyTypes",
    serial: int,
    not_before: datetime,
    not_after: datetime,
    issuer_ski: x509.SubjectKeyIdentifier | None,
    path_length: int | None,
) -> x509.CertificateBuilder:
    """A CA certificate: root (``path_length`` None) or issuing intermediate (``path_length`` 0).

    digitalSignature is set as well as keyCertSign and cRLSign so the CA can sign OCSP responses itself.
    No EKU is set on CAs: an EKU on an intermediate would restrict every leaf under it (a serverAuth-only
    intermediate silently breaks clientAuth leaves).
    """
    return (
        base_builder(subject, issuer, public_key, serial, not_before, not_after, issuer_ski)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage(["digitalSignature", "keyCertSign", "cRLSign"]), critical=True)
    )


def leaf_builder(
    request: "IssuanceRequest",
    issuer: x509.Certificate,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None,
    ocsp_url: str | None,
) -> x509.CertificateBuilder:
    """A leaf under ``issuer`` with the extensions the profile grants."""
    before_san, after_san = _leaf_extensions(request.profile, request.key_algorithm, issuer, crl_url, ocsp_url)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer.subject)
        .public_key(request.public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
    )
    for extension, critical in before_san:
        builder = builder.add_extension(extension, critical=critical)
    if request.general_names:
        # RFC 5280 4.2.1.6: critical only when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(request.general_names), critical=len(request.subject) == 0
        )
    for extension, critical in after_san:
        builder = builder.add_extension(extension, critical=critical)
    return builder


Extensions = tuple[tuple[x509.ExtensionType, bool], ...]


@lru_cache(maxsize=64)
def _leaf_extensions(profile: "Profile", key_algorithm: str, issuer: x509.Certificate, crl_url: str | None,
                     ocsp_url: str | None) -> tuple[Extensions, Extensions]:
    """The extensions every leaf of one profile, key algorithm and issuer shares (built once per batch):
    AKI, basic constraints, key usage and EKU before the SAN; CRL and OCSP pointers after it."""
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    before_san: Extensions = (
        (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(profile.key_usage_for(key_algorithm)), profile.key_usage_critical),
        (x509.ExtendedKeyUsage([ObjectIdentifier(EXTENDED_KEY_USAGES[name]) for name in profile.eku]),
         profile.eku_critical),
    )
    after_san: Extensions = tuple(revocation_extensions(crl_url if profile.crl_distribution_point else None,
                                                        ocsp_url if profile.ocsp else None))
    return before_san, after_san


__all__ = ["BACKDATE", "base_builder", "ca_builder", "key_usage", "leaf_builder", "revocation_extensions",
           "revocation_pointers", "validity"]
