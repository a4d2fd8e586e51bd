"""One check of a raw signature with a public key, for the CMS and OCSP structures pyca does not verify itself, and
the one plain signature privca makes itself (the ledger's seals)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa


def signature_valid(public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    """True when ``signature`` over ``data`` verifies: RSA PKCS#1 v1.5 or ECDSA with ``algorithm``, or Ed25519/Ed448
    (which take no separate digest). Any other key type, or a malformed signature, is simply not valid."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


#: The signatures a ledger seal may carry: the CA key's own kind, over SHA-256.
RSA_SHA256, ECDSA_SHA256 = "rsa-pkcs1v15-sha256", "ecdsa-sha256"


def sign_sha256(private_key: object, data: bytes) -> tuple[str, bytes]:
    """Sign ``data`` with a CA key (a key file's, or a token key's through the same object the builders use):
    RSA PKCS#1 v1.5 or ECDSA, both with SHA-256. Returns the algorithm's name and the signature."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return RSA_SHA256, private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return ECDSA_SHA256, private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise TypeError(f"{type(private_key).__name__}: not an RSA or EC key")


def sha256_signature_valid(public_key: object, algorithm: str, signature: bytes, data: bytes) -> bool:
    """Whether a signature ``sign_sha256`` made verifies with ``public_key`` (whose kind must match ``algorithm``)."""
    if (algorithm == RSA_SHA256) != isinstance(public_key, rsa.RSAPublicKey) or algorithm not in (RSA_SHA256,
                                                                                                  ECDSA_SHA256):
        return False
    return signature_valid(public_key, signature, data, hashes.SHA256())
