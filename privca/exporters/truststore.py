"""A Java trust store as PKCS#12 (RFC 7292), byte-for-byte reproducible.

cryptography's ``serialize_java_truststore`` writes the right content, but draws a fresh random MAC salt on every
call, so two exports of the same ledger would differ. This module writes the same structure with the salt derived
from the content: the same CA certificates always give the same file. The password of a trust store guards only
the integrity of public certificates (Java's own ``cacerts`` ships with the well-known password ``changeit``), so a
content-derived salt costs nothing.

Structure (what keytool writes for ``-importcert`` into a PKCS#12 store, and what cryptography writes):

    PFX { version 3,
          authSafe ContentInfo(data) { AuthenticatedSafe { ContentInfo(data) { SafeContents {
              SafeBag certBag { x509Certificate DER },
                  attributes { friendlyName (alias),
                               Oracle trustedKeyUsage 2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage } } } } },
          macData { HMAC-SHA-256, salt, iterations } }

Java lists a certificate-only bag as a ``trustedCertEntry`` only when the Oracle trustedKeyUsage attribute is
present; without it the store looks empty to keytool. Certificates are not encrypted: they are public, and an
unencrypted bag is what Java itself writes with ``keystore.pkcs12.certProtectionAlgorithm=NONE``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from privca.common.der import bmp_string, explicit, integer, null, octets, oid, sequence, set_of

DEFAULT_PASSWORD = "changeit"  # Java's default trust store password; keytool -storepasswd changes it
MAC_ITERATIONS = 10_000        # the default of JDK 12+ and OpenSSL 3 for the PKCS#12 MAC

OID_DATA = "1.2.840.113549.1.7.1"
OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
OID_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
OID_ORACLE_TRUSTED_KEY_USAGE = "2.16.840.1.113894.746875.1.1"
OID_ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"


# --- PKCS#12 -------------------------------------------------------------------------------------------------

def _cert_bag(der: bytes, alias: str) -> bytes:
    attributes = set_of(
        sequence(oid(OID_FRIENDLY_NAME), set_of(bmp_string(alias))),
        sequence(oid(OID_ORACLE_TRUSTED_KEY_USAGE), set_of(oid(OID_ANY_EXTENDED_KEY_USAGE))),
    )
    cert_bag = sequence(oid(OID_X509_CERTIFICATE), explicit(0, octets(der)))
    return sequence(oid(OID_CERT_BAG), explicit(0, cert_bag), attributes)


def _data_content_info(content: bytes) -> bytes:
    return sequence(oid(OID_DATA), explicit(0, octets(content)))


def pkcs12_kdf(password: str, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """RFC 7292 appendix B.2 key derivation with SHA-256 (purpose 3 = MAC key)."""
    u, v = 32, 64  # SHA-256 output and block sizes in bytes
    secret = password.encode("utf-16-be") + b"\x00\x00" if password else b""

    def fill(data: bytes) -> bytes:
        """``data`` repeated to the next multiple of v bytes (empty stays empty)."""
        length = v * -(-len(data) // v)
        return (data * (length // len(data) + 1))[:length] if data else b""

    block = fill(salt) + fill(secret)
    diversifier = bytes([purpose]) * v
    out = b""
    while len(out) < size:
        digest = hashlib.sha256(diversifier + block).digest()
        for _ in range(iterations - 1):
            digest = hashlib.sha256(digest).digest()
        out += digest
        addend = int.from_bytes((digest * (v // u + 1))[:v], "big") + 1
        block = b"".join(
            ((int.from_bytes(block[i:i + v], "big") + addend) % (1 << (8 * v))).to_bytes(v, "big")
            for i in range(0, len(block), v)
        )
    return out[:size]


def java_truststore(entries: Sequence[tuple[str, bytes]], password: str = DEFAULT_PASSWORD) -> bytes:
    """A PKCS#12 trust store holding ``(alias, certificate DER)`` entries, in the order given."""
    safe_contents = sequence(*(_cert_bag(der, alias) for alias, der in entries))
    auth_safe = sequence(_data_content_info(safe_contents))
    # Reproducible: the salt is a digest of what the MAC protects (see the module docstring).
    salt = hashlib.sha256(b"privca-truststore-salt" + auth_safe).digest()[:16]
    key = pkcs12_kdf(password, salt, 3, MAC_ITERATIONS, 32)
    mac = hmac.new(key, auth_safe, hashlib.sha256).digest()
    algorithm = sequence(oid(OID_SHA256), null())
    mac_data = sequence(sequence(algorithm, octets(mac)), octets(salt), integer(MAC_ITERATIONS))
    return sequence(integer(3), _data_content_info(auth_safe), mac_data)
