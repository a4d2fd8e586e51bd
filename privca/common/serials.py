"""Serial numbers as people see them, and as they type them.

OpenSSL, CUCM and Expressway show a serial as whole bytes: a 159-bit random serial whose top nibble is zero is
``0a1b...`` (40 hex digits), never ``a1b...`` (39). privca shows serials the same way, so that a serial copied
from any of them (or a grep for it) finds the certificate. The ledger keys rows by the digits without leading
zeros (``ledger_serial``); that form never reaches a person.
"""

from __future__ import annotations

from privca.errors import UsageError

# A prefix this long is unique among random 159-bit serials unless a store holds tens of thousands of
# certificates; shorter ones would make typos match by chance.
MIN_PREFIX_DIGITS = 8


def serial_text(serial: int | str) -> str:
    """A serial (an integer, or hex digits in any form) as whole bytes of lowercase hex, as OpenSSL shows it."""
    digits = format(serial, "x") if isinstance(serial, int) else serial.lower().lstrip("0") or "0"
    return digits.zfill(len(digits) + len(digits) % 2)


def typed_digits(text: str) -> str:
    """The hex digits of a serial as people type it: colons, spaces, ``0x`` and case are ignored, zeros kept."""
    digits = "".join(text.split()).lower().replace(":", "").removeprefix("0x")
    if not digits or any(ch not in "0123456789abcdef" for ch in digits):
        from privca.common.names import printable

        raise UsageError(f"serial {printable(text)!r}: must be hexadecimal, as privca list shows it")
    return digits


def ledger_serial(digits: str) -> str:
    """The ledger's key for a serial: its hex digits without leading zeros."""
    return digits.lstrip("0") or "0"


def matches_prefix(stored: str, digits: str) -> bool:
    """Whether the typed ``digits`` begin the serial as privca shows it (or as older versions showed it)."""
    return serial_text(stored).startswith(digits) or stored.startswith(digits)
