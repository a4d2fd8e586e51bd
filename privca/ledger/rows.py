"""Row digests: what binds every state row of the ledger to the events log.

Each write transaction records, in its events, the digest of every row it inserted, changed or deleted
(``privca.ledger.chain`` does it when the transaction commits). ``privca verify`` replays those digests and
compares the last one of each row with the row as it is now: a row edited with ``sqlite3`` behind privca's back
(a certificate un-revoked, a CRL URL pointed elsewhere) no longer matches, and the columns that changed are named.

A digest is ``<sha256 of the row>.<tags>``: the SHA-256 proves the row (every column, in one canonical
serialization), the tags (4 hex digits of each column's CRC-32, in column-name order) only help name which columns
changed: they prove nothing (a CRC is easy to match), the SHA-256 does.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

#: The state tables and their primary key. The events log proves itself (hash chain), the seals table by signature.
TRACKED: dict[str, str] = {
    "cas": "id",
    "certificates": "id",
    "crls": "ca_id",
    "cross_certificates": "id",
    "enroll_challenges": "id",
    "enroll_requests": "id",
}
#: What an event records for a row its transaction deleted.
DELETED = "deleted"
_TAG_DIGITS = 4


def key(table: str, row_id: object) -> str:
    """How events name a row: ``certificates/12``."""
    return f"{table}/{row_id}"


def split_key(row_key: str) -> tuple[str, str]:
    table, _, row_id = row_key.partition("/")
    return table, row_id


def _column(name: str, value: object) -> bytes:
    """One column, typed and length-prefixed, so that no two different rows serialize alike."""
    if value is None:
        kind, data = b"n", b""
    elif isinstance(value, bool):  # never stored, but a bool is an int: keep them apart
        kind, data = b"i", str(int(value)).encode()
    elif isinstance(value, int):
        kind, data = b"i", str(value).encode()
    elif isinstance(value, float):
        kind, data = b"f", repr(value).encode()
    elif isinstance(value, str):
        kind, data = b"s", value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        kind, data = b"b", bytes(value)
    else:  # SQLite has no other storage class
        kind, data = b"?", repr(value).encode()
    encoded_name = name.encode()
    return b"%d:%s%s%d:%s" % (len(encoded_name), encoded_name, kind, len(data), data)


def canonical(names: Sequence[str], values: Sequence[object]) -> list[bytes]:
    """The canonical serialization of a row, one part per column in column-name order."""
    return [_column(name, value) for name, value in sorted(zip(names, values, strict=True))]


def digest(names: Sequence[str], values: Sequence[object]) -> str:
    """``<sha256>.<tags>`` of a row (see the module docstring)."""
    parts = canonical(names, values)
    whole = hashlib.sha256(b"".join(parts)).hexdigest()
    return f"{whole}.{''.join(_tag(part) for part in parts)}"


def _tag(part: bytes) -> str:
    return "%04x" % (zlib.crc32(part) & 0xFFFF)


def changed_columns(names: Sequence[str], values: Sequence[object], recorded: str) -> list[str]:
    """The columns of a row whose tags differ from a recorded digest (empty when that cannot be told: a column
    was added or removed, or the recorded digest is not privca's)."""
    _, _, tags = recorded.partition(".")
    ordered = sorted(names)
    parts = canonical(names, values)
    if len(tags) != _TAG_DIGITS * len(parts):
        return []
    return [name for index, (name, part) in enumerate(zip(ordered, parts, strict=True))
            if _tag(part) != tags[index * _TAG_DIGITS:(index + 1) * _TAG_DIGITS]]


def same(names: Sequence[str], values: Sequence[object], recorded: str) -> bool:
    return digest(names, values).partition(".")[0] == recorded.partition(".")[0]
