"""A minimal DER encoder (and reader): just the ASN.1 types privca writes itself.

cryptography writes certificates, CRLs and OCSP responses; privca assembles only two structures by hand: the
PKCS#8 EncryptedPrivateKeyInfo with scrypt (privca.keys.material), which cryptography has no builder for, and a
deterministic PKCS#12 trust store for Java (privca.exporters.truststore).
"""

from __future__ import annotations


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    length = len(content)
    if length < 0x80:
        encoded = bytes([length])
    else:
        size = length.to_bytes((length.bit_length() + 7) // 8, "big")
        encoded = bytes([0x80 | len(size)]) + size
    return bytes([tag]) + encoded + content


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_of(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(items)))  # DER: SET OF elements in ascending order of their encodings


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 + number, content)


def integer(value: int) -> bytes:
    """A non-negative INTEGER (a leading zero byte keeps the top bit clear)."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def null() -> bytes:
    return tlv(0x05, b"")


def oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray()
    for arc in [first * 40 + second, *rest]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def bmp_string(text: str) -> bytes:
    return tlv(0x1E, text.encode("utf-16-be"))


def children(content: bytes) -> list[tuple[int, bytes]]:
    """The elements (tag, content) one after another in ``content``: the inside of a SEQUENCE privca wrote.
    ValueError for anything that is not a run of short-tag, definite-length elements."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(content):
        if pos + 2 > len(content):
            raise ValueError("truncated DER element")
        tag, length = content[pos], content[pos + 1]
        pos += 2
        if length & 0x80:
            size = length & 0x7F
            if not 1 <= size <= 4 or pos + size > len(content):
                raise ValueError("unsupported DER length")
            length = int.from_bytes(content[pos:pos + size], "big")
            pos += size
        if pos + length > len(content):
            raise ValueError("truncated DER element")
        items.append((tag, content[pos:pos + length]))
        pos += length
    return items
