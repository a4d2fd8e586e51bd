"""CSRs from devices: read strictly when possible, leniently when a client's encoding is BER rather than DER.

pyca/cryptography refuses a CSR whose attribute SET is not in DER order, which strongSwan's SCEP client (and
other BER encoders) send, and does not verify SHA-1 CSR signatures. Such a CSR is read with asn1crypto, its signature verified over the bytes as received,
and its attributes put in DER order so that cryptography can read the rest; the signature stays the device's
own, so the re-encoded copy is never handed out, only checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from privca.common.signatures import signature_valid
from privca.errors import CSRError
from privca.issuance.policy import load_csr

def _hash(name: str) -> hashes.HashAlgorithm | None:
    return {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512()}.get(name)


@dataclass(frozen=True)
class DeviceCsr:
    csr: x509.CertificateSigningRequest
    signature_ok: bool
    reencoded: bool


def read_csr(der: bytes, source: str) -> DeviceCsr:
    try:
        csr = load_csr(der, source)
    except CSRError as strict:
        repaired = _der_ordered(der)
        if repaired is None:
            raise strict from None
        return repaired
    try:
        ok = csr.is_signature_valid
    except Exception:
        ok = False
    if not ok:
        # cryptography declines SHA-1 CSR signatures, which strongSwan and older IOS make: verify them here.
        checked = _der_ordered(der)
        ok = checked is not None and checked.signature_ok
    return DeviceCsr(csr, ok, False)


def _der_ordered(der: bytes) -> DeviceCsr | None:
    from asn1crypto import csr as asn1_csr

    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        info = request["certification_request_info"]
        signed_bytes = info.dump()  # the bytes as received: asn1crypto keeps them unless the value is changed
        attributes = sorted(info["attributes"], key=lambda attribute: attribute.dump())
        ordered = asn1_csr.CertificationRequest({
            "certification_request_info": asn1_csr.CertificationRequestInfo({
                "version": info["version"], "subject": info["subject"], "subject_pk_info": info["subject_pk_info"],
                "attributes": attributes}),
            "signature_algorithm": request["signature_algorithm"],
            "signature": request["signature"],
        })
        csr = x509.load_der_x509_csr(ordered.dump())
        digest = request["signature_algorithm"].hash_algo
        signature = bytes(request["signature"].native)
    except Exception:
        return None
    return DeviceCsr(csr, _verifies(csr.public_key(), signature, signed_bytes, digest), True)


def _verifies(public_key: object, signature: bytes, data: bytes, digest: str) -> bool:
    algorithm = _hash(digest)
    return algorithm is not None and signature_valid(public_key, signature, data, algorithm)
