"""Subject alternative names: parsing, normalisation and the rules every profile builds on.

One place decides what a valid DNS name is, so that issuance, audit and check agree.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class SanEntry:
    """One SAN value as privca sees it: ``kind`` is ``dns``, ``ip``, ``email``, ``uri`` or ``other``."""

    kind: str
    value: str

    def text(self) -> str:
        """How Cisco products show it, e.g. ``DNS:expc1.example.com``."""
        prefix = {"dns": "DNS", "ip": "IP Address", "email": "email", "uri": "URI"}.get(self.kind, "othername")
        return f"{prefix}:{self.value}"


def san_entries(general_names: object) -> list[SanEntry]:
    """SanEntry values from a cryptography ``SubjectAlternativeName`` (or any iterable of GeneralName)."""
    from cryptography import x509

    entries = []
    for name in general_names:  # type: ignore[attr-defined]
        if isinstance(name, x509.DNSName):
            entries.append(SanEntry("dns", name.value))
        elif isinstance(name, x509.IPAddress):
            entries.append(SanEntry("ip", str(name.value)))
        elif isinstance(name, x509.RFC822Name):
            entries.append(SanEntry("email", name.value))
        elif isinstance(name, x509.UniformResourceIdentifier):
            entries.append(SanEntry("uri", name.value))
        else:
            entries.append(SanEntry("other", type(name).__name__))
    return entries


def san_text_length(entries: list[SanEntry]) -> int:
    """Length of the SAN list as Expressway shows it (``DNS:a, DNS:b``); Expressway ignores text past 999."""
    return len(", ".join(entry.text() for entry in entries))


def is_wildcard(name: str) -> bool:
    return "*" in name


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` is not a fully qualified DNS host name privca will certify, or None when it is fine."""
    if not name:
        return "empty DNS name"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in name):
        return "DNS name contains spaces or control characters"
    if not name.isascii():
        return "DNS name has non-ASCII characters; use the IDNA A-label (xn--) form"
    if is_wildcard(name):
        return "wildcard names are not allowed (Expressway and CUCM do not support wildcard certificates)"
    if name.endswith("."):
        return "DNS name ends with a dot"
    if len(name) > 253:
        return "DNS name is longer than 253 characters"
    labels = name.lower().split(".")
    if len(labels) < 2:
        return "not a fully qualified domain name"
    for label in labels:
        if not _LABEL.match(label):
            return f"label {label!r} is not a valid host name label"
        if label.startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return f"label {label!r} is not valid punycode"
    if labels[-1].isdigit():
        return "the last label is numeric; an IP address belongs in an IP SAN"
    return None


def ip_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    return None


def printable(text: str, limit: int = 80) -> str:
    """A value from a CSR, made safe to put into a one-line message (no control characters, bounded)."""
    cleaned = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
