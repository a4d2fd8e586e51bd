"""Subject alternative names: parsing, normalisation and the rules every profile builds on.

One place decides what a valid DNS name is, so that issuance, audit and check agree.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

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


def san_kind(value: str) -> str:
    """The kind of a SAN value stored as plain text in the ledger: ``ip``, ``uri``, ``email`` or ``dns``.

    Unambiguous for what privca issues: a DNS name has neither ``@`` nor ``:``, and an IP address parses as one.
    """
    try:
        ipaddress.ip_address(value)
        return "ip"
    except ValueError:
        pass
    if "://" in value:
        return "uri"
    return "email" if "@" in value else "dns"


def common_name(name: Any, fallback: str = "") -> str:
    """The first CN of a cryptography ``x509.Name``, or ``fallback`` when it has none."""
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else fallback


def san_text_length(entries: list[SanEntry]) -> int:
    """Length of the SAN list as Expressway shows it (``DNS:a, DNS:b``); Expressway ignores text past 999."""
    return len(", ".join(entry.text() for entry in entries))


def is_wildcard(name: str) -> bool:
    return "*" in name


# The common case in one regular-expression match: lower- or upper-case LDH labels, at least two, the last not
# all digits, no label starting "xn--" (those get the IDNA checks below).
_PLAIN_FQDN = re.compile(r"(?!.*(?:^|\.)xn--)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?![0-9]+$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
                         re.IGNORECASE | re.ASCII)


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` is not a fully qualified DNS host name privca will certify, or None when it is fine."""
    if len(name) <= 253 and _PLAIN_FQDN.fullmatch(name):
        return None  # fast path for a batch of thousands; any other name gets the detailed reasons below
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
        if label.startswith("xn--") and (problem := a_label_problem(label)):
            return problem
    if labels[-1].isdigit():
        return "the last label is numeric; an IP address belongs in an IP SAN"
    return None


# Scripts that one Japanese, Chinese or Korean name legitimately mixes.
_CJK_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"}


def a_label_problem(label: str) -> str | None:
    """Why an IDNA A-label (``xn--...``) is a trick rather than an internationalised name (RFC 5890, RFC 5891).

    Refused: labels that do not decode, or decode to plain ASCII or to something that does not encode back to
    the same label (not the canonical A-label); U-labels that are not NFC; characters other than letters, marks,
    digits and hyphens (``⒈`` or ``。`` look like a dot to a person); and letters from more than one script in
    one label (``аpple`` with a Cyrillic ``а``), the homograph trick browsers also refuse to display.
    """
    import unicodedata

    try:
        decoded = label[4:].encode("ascii").decode("punycode")
        canonical = "xn--" + decoded.encode("punycode").decode("ascii")
    except UnicodeError:
        return f"label {label!r} is not valid punycode"
    if decoded.isascii() or canonical != label:
        return f"label {label!r} is not a valid IDNA A-label (it decodes to {printable(decoded)!r})"
    if not unicodedata.is_normalized("NFC", decoded):
        return f"label {label!r} decodes to a name that is not in Unicode normal form C"
    scripts = set()
    for ch in decoded:
        category = unicodedata.category(ch)
        if ch != "-" and category[0] not in "LM" and category != "Nd":
            return f"label {label!r} decodes to {printable(decoded)!r}, which holds {unicodedata.name(ch, 'an unnamed character')}"
        if category[0] == "L":
            script = unicodedata.name(ch, "?").split()[0]
            scripts.add("CJK" if script in _CJK_SCRIPTS else script)
    if len(scripts) > 1:
        return (f"label {label!r} decodes to {printable(decoded)!r}, which mixes {' and '.join(sorted(scripts))} "
                "letters (a look-alike name)")
    return None


def ip_problem(value: str, *, special: bool = False) -> str | None:
    """Why ``value`` is not an IP address a host can be reached at; ``special`` lets a profile allow the rest.

    Refused by default: the unspecified address (0.0.0.0, ::), which a peer never connects to; broadcast,
    multicast and reserved ranges; loopback, which names every machine at once.
    """
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    if special:
        return None
    if address.is_unspecified:
        return "the unspecified address names no host"
    if address == ipaddress.IPv4Address("255.255.255.255") or address.is_multicast:
        return "a broadcast or multicast address names no single host"
    if address.is_loopback:
        return "a loopback address names every machine; use the host's own address"
    if address.is_reserved:
        return "a reserved address names no host"
    return None


def escaped(text: str) -> str:
    """``text`` with every control, format and bidirectional-override character escaped, whole (no length cap).

    For what reaches a terminal or a log line from outside (file names, profile text, certificate fields, HTTP
    request paths): ESC sequences, newlines and U+202E cannot rewrite the screen or forge log lines.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, limit: int = 80) -> str:
    """A value from a CSR, made safe to put into a one-line message (no control characters, bounded)."""
    cleaned = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
