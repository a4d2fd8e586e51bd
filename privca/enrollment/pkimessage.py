"""SCEP pkiMessages (RFC 8894 section 3): CMS SignedData around an EnvelopedData, read and written with asn1crypto.

pyca/cryptography signs and decrypts PKCS#7 only in the shapes S/MIME uses: it cannot add SCEP's signed attributes
(messageType, transactionID, nonces, pkiStatus, failInfo) or read them back, and it cannot decrypt the 3DES content
that IOS routers send. asn1crypto, a maintained pure-Python ASN.1 library, gives every CMS structure as a typed
object; the cryptography (RSA, AES, 3DES, digests) stays with pyca/cryptography.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asn1crypto import algos, cms, core, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from privca.errors import EnrollmentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# RFC 8894 section 3.2.1: the signed attributes of a pkiMessage (Verisign's arc).
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"

# messageType values (RFC 8894 section 3.2.1.2).
CERT_REP = "3"
RENEWAL_REQ = "17"
PKCS_REQ = "19"
CERT_POLL = "20"  # GetCertInitial in draft-nourse, CertPoll in RFC 8894
GET_CERT = "21"
GET_CRL = "22"

# pkiStatus (section 3.2.1.3) and failInfo (section 3.2.1.4).
SUCCESS, FAILURE, PENDING = "0", "2", "3"
BAD_ALG, BAD_MESSAGE_CHECK, BAD_REQUEST, BAD_TIME, BAD_CERT_ID = "0", "1", "2", "3", "4"

MAX_MESSAGE_BYTES = 64 * 1024  # an IOS PKCSReq is ~3 KiB; anything this large is not one

# Content encryption: the name used in GetCACaps and settings, asn1crypto's algorithm name, key bytes.
CIPHERS = {
    "aes128": ("aes128_cbc", 16),
    "aes192": ("aes192_cbc", 24),
    "aes256": ("aes256_cbc", 32),
    "des3": ("tripledes_3key", 24),
    "des": ("des", 8),
}
_CIPHER_BY_OID_NAME = {oid_name: name for name, (oid_name, _) in CIPHERS.items()}
DIGESTS = ("sha1", "sha256", "sha512")


def _hash(name: str) -> hashes.HashAlgorithm:
    return {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}[name]


class MessageRefused(EnrollmentError):
    """A pkiMessage that is answered with CertRep FAILURE and this failInfo (RFC 8894 section 3.2.1.4)."""

    def __init__(self, message: str, fail_info: str) -> None:
        super().__init__(message)
        self.fail_info = fail_info


@dataclass(frozen=True)
class Algorithms:
    """What this server accepts: SHA-1 and single DES only behind explicit legacy switches."""

    allow_sha1: bool = False
    allow_des: bool = False

    def digest_allowed(self, name: str) -> bool:
        return name in ("sha256", "sha512") or (name == "sha1" and self.allow_sha1)

    def cipher_allowed(self, name: str) -> bool:
        return name in ("aes128", "aes192", "aes256", "des3") or (name == "des" and self.allow_des)


@dataclass(frozen=True)
class PkiMessage:
    """A request whose signature verified: what it says and who signed it."""

    message_type: str
    transaction_id: str
    sender_nonce: bytes
    digest: str  # sha1, sha256 or sha512: the CertRep is signed with the same
    signer: x509.Certificate
    signer_der: bytes
    envelope: bytes | None  # DER of the pkcsPKIEnvelope (ContentInfo of EnvelopedData)


def _attribute(signed_attrs: cms.CMSAttributes, oid: str) -> core.Any | None:
    for attribute in signed_attrs:
        if attribute["type"].dotted == oid:
            values = attribute["values"]
            if len(values) != 1:
                raise MessageRefused(f"pkiMessage: attribute {oid} has {len(values)} values", BAD_REQUEST)
            return values[0]
    return None


def _text(value: object) -> str:
    """A PrintableString attribute value as text, whatever asn1crypto parsed it as."""
    if isinstance(value, core.Any):
        return str(value.parse(core.PrintableString).native)
    return str(getattr(value, "native", value))


def _octets(value: object) -> bytes:
    if isinstance(value, core.Any):
        return bytes(value.parse(core.OctetString).native)
    return bytes(getattr(value, "native", b""))


def parse(der: bytes, accepted: Algorithms) -> PkiMessage:
    """Read a pkiMessage and verify its signature. MessageRefused carries the failInfo to answer with; a message
    too broken to answer at all (no transactionID to reply to) raises a plain EnrollmentError."""
    if not der or len(der) > MAX_MESSAGE_BYTES:
        raise EnrollmentError(f"pkiMessage: {len(der)} bytes; not a SCEP message")
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise EnrollmentError("pkiMessage: not CMS SignedData")
        signed = info["content"]
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise EnrollmentError(f"pkiMessage: {len(signer_infos)} signers; SCEP has exactly one")
        signer_info = signer_infos[0]
        attrs = signer_info["signed_attrs"]
        if not attrs:
            raise EnrollmentError("pkiMessage: no signed attributes")
        message_type = _attribute(attrs, OID_MESSAGE_TYPE)
        transaction = _attribute(attrs, OID_TRANSACTION_ID)
        nonce = _attribute(attrs, OID_SENDER_NONCE)
        if message_type is None or transaction is None or nonce is None:
            raise EnrollmentError("pkiMessage: messageType, transactionID or senderNonce missing")
        kind, transaction_id, sender_nonce = _text(message_type), _text(transaction), _octets(nonce)
        digest = signer_info["digest_algorithm"]["algorithm"].native
        content = signed["encap_content_info"]["content"]
        envelope = bytes(content.native) if content.native is not None else None
        signer_der, signer = _signer_certificate(signed, signer_info)
        signature = bytes(signer_info["signature"].native)
        digest_value = _attribute(attrs, "1.2.840.113549.1.9.4")
        to_verify = b"\x31" + attrs.dump()[1:]  # RFC 5652 5.4: the signature covers the SET OF, not the [0] tag
    except EnrollmentError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError and friends on malformed DER
        raise EnrollmentError(f"pkiMessage: not valid DER CMS ({type(exc).__name__})") from None
    if len(transaction_id) > 128 or not transaction_id.isprintable():
        raise EnrollmentError("pkiMessage: transactionID is not printable text of at most 128 characters")
    message = PkiMessage(kind, transaction_id, sender_nonce, digest, signer, signer_der, envelope)
    if digest not in DIGESTS or not accepted.digest_allowed(digest):
        raise RefusedMessage(message, f"digest {digest} is not accepted"
                             + (" (SHA-1 needs the legacy switch)" if digest == "sha1" else ""), BAD_ALG)
    if digest_value is None or _octets(digest_value) != hashlib.new(digest, envelope or b"").digest():
        raise RefusedMessage(message, "messageDigest does not match the content (tampered message)",
                             BAD_MESSAGE_CHECK)
    public_key = signer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise RefusedMessage(message, "the signer key is not RSA; SCEP encrypts the reply to it", BAD_ALG)
    try:
        public_key.verify(signature, to_verify, asym_padding.PKCS1v15(), _hash(digest))
    except Exception:
        raise RefusedMessage(message, "the signature does not verify (tampered message or wrong key)",
                             BAD_MESSAGE_CHECK) from None
    return message


class RefusedMessage(MessageRefused):
    """A refusal of a message whose transactionID and nonce are known, so a CertRep FAILURE can answer it."""

    def __init__(self, message: PkiMessage, text: str, fail_info: str) -> None:
        super().__init__(f"pkiMessage {message.transaction_id}: {text}", fail_info)
        self.pki_message = message


def _signer_certificate(signed: cms.SignedData, signer_info: cms.SignerInfo) -> tuple[bytes, x509.Certificate]:
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise EnrollmentError("pkiMessage: the signer is not named by issuer and serial number")
    wanted = sid.chosen
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        tbs = cert["tbs_certificate"]
        if tbs["serial_number"].native == wanted["serial_number"].native and tbs["issuer"] == wanted["issuer"]:
            der = cert.dump()
            return der, x509.load_der_x509_certificate(der)
    raise EnrollmentError("pkiMessage: the signer's certificate is not in the message")


def open_envelope(envelope: bytes, ra_cert: x509.Certificate, ra_key: "RSAPrivateKey",
                  accepted: Algorithms) -> tuple[bytes, str]:
    """Decrypt a pkcsPKIEnvelope addressed to the RA; return the content and the cipher name (to answer with)."""
    try:
        info = cms.ContentInfo.load(envelope, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise MessageRefused("pkcsPKIEnvelope: not CMS EnvelopedData", BAD_REQUEST)
        enveloped = info["content"]
        encrypted_key = None
        for recipient in enveloped["recipient_infos"]:
            if recipient.name != "ktri":
                continue
            rid = recipient.chosen["rid"]
            if rid.name == "issuer_and_serial_number" and rid.chosen["serial_number"].native == ra_cert.serial_number:
                encrypted_key = bytes(recipient.chosen["encrypted_key"].native)
        algorithm, ciphertext = _encrypted_content_info(enveloped["encrypted_content_info"].contents)
        oid_name = algorithm["algorithm"].native
        iv = algorithm.encryption_iv
    except MessageRefused:
        raise
    except Exception as exc:
        raise MessageRefused(f"pkcsPKIEnvelope: not valid DER CMS ({type(exc).__name__})", BAD_REQUEST) from None
    if encrypted_key is None:
        raise MessageRefused("pkcsPKIEnvelope: not encrypted to this server's RA certificate; run the client's "
                             "GetCACert again", BAD_CERT_ID)
    cipher = _CIPHER_BY_OID_NAME.get(oid_name)
    if cipher is None or not accepted.cipher_allowed(cipher):
        hint = " (single DES needs the legacy switch)" if cipher == "des" else ""
        raise MessageRefused(f"pkcsPKIEnvelope: content encryption {oid_name} is not accepted{hint}", BAD_ALG)
    try:
        key = ra_key.decrypt(encrypted_key, asym_padding.PKCS1v15())
        plain = _decrypt(cipher, key, bytes(iv), bytes(ciphertext or b""))
    except Exception:
        raise MessageRefused("pkcsPKIEnvelope: cannot be decrypted with the RA key", BAD_MESSAGE_CHECK) from None
    return plain, cipher


def _values(data: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """The (class, method, tag, header, contents) of each BER value in ``data``, in order."""
    values = []
    while data:
        klass, method, tag, header, contents, trailer = parser.parse(data)
        values.append((klass, method, tag, header, contents))
        data = data[len(header) + len(contents) + len(trailer):]
    return values


def _octets_ber(method: int, contents: bytes) -> bytes:
    """An OCTET STRING's bytes, primitive or constructed from chunks (BER, as Go's pkcs7 and Java write it)."""
    if method == 0:
        return contents
    return b"".join(_octets_ber(m, c) for _, m, _, _, c in _values(contents))


def _encrypted_content_info(contents: bytes) -> tuple[cms.EncryptionAlgorithm, bytes]:
    """EncryptedContentInfo read by hand: asn1crypto refuses the constructed [0] encryptedContent that several
    SCEP clients (micromdm's among them) send, which BER allows (RFC 5652 6.1)."""
    values = _values(contents)
    if len(values) < 2:
        raise ValueError("EncryptedContentInfo too short")
    algorithm = cms.EncryptionAlgorithm.load(values[1][3] + values[1][4])
    ciphertext = b""
    for klass, method, tag, _, inner in values[2:]:
        if klass == 2 and tag == 0:
            ciphertext = _octets_ber(method, inner)
    return algorithm, ciphertext


def _block_cipher(cipher: str, key: bytes) -> algorithms.AES | object:
    if cipher.startswith("aes"):
        return algorithms.AES(key)
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    # Single DES is 3DES with its one key three times; only reached behind the legacy switch.
    return TripleDES(key * 3 if len(key) == 8 else key)


def _decrypt(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    if len(key) != CIPHERS[cipher][1]:
        raise ValueError("key length")
    block = _block_cipher(cipher, key)
    decryptor = Cipher(block, modes.CBC(iv)).decryptor()  # type: ignore[arg-type]
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(len(iv) * 8).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _encrypt(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(len(iv) * 8).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(_block_cipher(cipher, key), modes.CBC(iv)).encryptor()  # type: ignore[arg-type]
    return encryptor.update(padded) + encryptor.finalize()


def certs_only(certificates_der: list[bytes]) -> bytes:
    """A degenerate certificates-only SignedData (RFC 8894 section 3.4, GetCACert and CertRep content)."""
    signed = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [],
        "encap_content_info": {"content_type": "data"},
        "certificates": [asn1_x509.Certificate.load(der) for der in certificates_der],
        "signer_infos": [],
    })
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def envelope_to(recipient: x509.Certificate, content: bytes, cipher: str) -> bytes:
    """EnvelopedData with ``content`` encrypted with ``cipher`` for ``recipient``'s RSA key (RFC 8894 3.2.2)."""
    oid_name, key_bytes = CIPHERS[cipher]
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise MessageRefused("the requester's key is not RSA; SCEP encrypts the reply to it", BAD_ALG)
    key, iv = os.urandom(key_bytes), os.urandom(16 if cipher.startswith("aes") else 8)
    if cipher == "des3":
        key = _odd_parity(key)
    elif cipher == "des":
        key = _odd_parity(key)
    encrypted_key = public_key.encrypt(key, asym_padding.PKCS1v15())
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = asn1_x509.Certificate.load(recipient.public_bytes(Encoding.DER))  # read for issuer and serial only
    enveloped = cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [cms.RecipientInfo(name="ktri", value=cms.KeyTransRecipientInfo({
            "version": "v0",
            "rid": cms.RecipientIdentifier(name="issuer_and_serial_number", value=cms.IssuerAndSerialNumber({
                "issuer": cert.issuer, "serial_number": cert.serial_number})),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": encrypted_key,
        }))],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": oid_name, "parameters": core.OctetString(iv)},
            "encrypted_content": _encrypt(cipher, key, iv, content),
        },
    })
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())


def _odd_parity(key: bytes) -> bytes:
    """DES keys carry a parity bit per byte; some clients (OpenSSL's DES_set_key_checked) insist on it."""
    return bytes(b & 0xFE | (bin(b & 0xFE).count("1") + 1) % 2 for b in key)


def cert_rep(ra_cert: x509.Certificate, ra_key: "RSAPrivateKey", request: PkiMessage, status: str, *,
             fail_info: str | None = None, envelope: bytes | None = None) -> bytes:
    """A CertRep (RFC 8894 section 3.3.2) answering ``request``, signed by the RA with the request's digest."""
    digest = request.digest
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.new(digest, envelope or b"").digest()]}),
        _scep_attribute(OID_MESSAGE_TYPE, core.PrintableString(CERT_REP)),
        _scep_attribute(OID_PKI_STATUS, core.PrintableString(status)),
        _scep_attribute(OID_TRANSACTION_ID, core.PrintableString(request.transaction_id)),
        _scep_attribute(OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
        _scep_attribute(OID_RECIPIENT_NONCE, core.OctetString(request.sender_nonce)),
    ]
    if fail_info is not None:
        attributes.append(_scep_attribute(OID_FAIL_INFO, core.PrintableString(fail_info)))
    return _signed_by_ra(ra_cert, ra_key, digest, attributes, envelope)


def next_ca_answer(ra_cert: x509.Certificate, ra_key: "RSAPrivateKey", certificates_der: list[bytes]) -> bytes:
    """The GetNextCACert answer (RFC 8894 section 4.7): a degenerate certificates-only SignedData with the next CA
    (and its RA) certificates, itself the content of a SignedData signed by the current RA, so that a device
    accepts the next CA on the strength of the one it trusts now."""
    content = certs_only(certificates_der)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
    ]
    return _signed_by_ra(ra_cert, ra_key, "sha256", attributes, content)


def _signed_by_ra(ra_cert: x509.Certificate, ra_key: "RSAPrivateKey", digest: str,
                  attributes: list[cms.CMSAttribute], content: bytes | None) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    # DER orders a SET OF by encoding; verifiers that re-encode the attributes (Go's pkcs7) then see our bytes.
    attributes.sort(key=lambda attribute: attribute.dump())
    signed_attrs = cms.CMSAttributes(attributes)
    signature = ra_key.sign(signed_attrs.dump(), asym_padding.PKCS1v15(), _hash(digest))
    der = ra_cert.public_bytes(Encoding.DER)
    # Two loads of the same bytes: one read for its issuer and serial, one left unparsed for the certificate set.
    # asn1crypto re-checks every parsed field of a certificate when it is encoded inside another structure; an
    # unparsed one is copied as bytes, which makes this reply several times cheaper.
    ra = asn1_x509.Certificate.load(der)
    encap: dict[str, object] = {"content_type": "data"}
    if content is not None:
        encap["content"] = content
    signed = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
        "encap_content_info": encap,
        "certificates": [asn1_x509.Certificate.load(der)],
        "signer_infos": [cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value=cms.IssuerAndSerialNumber({
                "issuer": ra.issuer, "serial_number": ra.serial_number})),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": signature,
        })],
    })
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def _scep_attribute(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": oid, "values": [core.Any.load(value.dump())]})


def issuer_and_subject(content: bytes) -> tuple[bytes, bytes]:
    """The (issuer, subject) DER names of a CertPoll/GetCertInitial content (RFC 8894 section 3.3.3)."""
    try:
        parsed = core.Sequence.load(content, strict=True)
        return parsed[0].dump(), parsed[1].dump()
    except Exception:
        raise MessageRefused("CertPoll: content is not IssuerAndSubject", BAD_REQUEST) from None
