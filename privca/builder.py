"""Pure certificate building: what goes into a certificate, with no disk, no clock and no keys.

Every certificate starts from ``base_builder`` (names, key, serial, validity, key identifiers); CAs and leaves
differ only in the extensions added after it. Leaf extensions come only from the profile, never from the CSR.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier

from .profiles import EXTENDED_KEY_USAGES, KEY_USAGES

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

    from .policy import IssuanceRequest

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


def revocation_pointers(
    builder: x509.CertificateBuilder, crl_url: str | None, ocsp_url: str | None
) -> x509.CertificateBuilder:
    """CRL distribution point and OCSP location, where the issuing CA has them."""
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
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
    profile = request.profile
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        base_builder(request.subject, issuer.subject, request.public_key, serial, not_before, not_after, issuer_ski)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(profile.key_usage_for(request.key_algorithm)), critical=profile.key_usage_critical)
        .add_extension(
            x509.ExtendedKeyUsage([ObjectIdentifier(EXTENDED_KEY_USAGES[name]) for name in profile.eku]),
            critical=profile.eku_critical,
        )
    )
    if request.general_names:
        # RFC 5280 4.2.1.6: critical only when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(request.general_names), critical=len(request.subject) == 0
        )
    return revocation_pointers(
        builder,
        crl_url if profile.crl_distribution_point else None,
        ocsp_url if profile.ocsp else None,
    )


__all__ = ["BACKDATE", "base_builder", "ca_builder", "key_usage", "leaf_builder", "validity"]
