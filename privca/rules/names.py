"""Name rules: SAN presence, types, DNS and IP syntax, duplicates, wildcards, total length, and the CN in the SANs.

The syntax of one DNS name is ``privca.common.names.dns_name_problem``; these rules apply it to a SAN list.
"""

from __future__ import annotations

from collections.abc import Sequence

from privca.common.names import SanEntry, dns_name_problem, ip_problem, is_wildcard, printable, san_text_length
from privca.rules.catalogue import Breach, rule

MAX_SAN_TEXT = 999  # Expressway ignores SAN text past 999 characters (TAC 213872)


def missing_san(what: str = "the certificate") -> Breach:
    """``what`` lacks SANs: ``the CSR`` at issuance, ``the certificate`` elsewhere."""
    return Breach(rule("san.missing"), f"{what} has no subjectAltName; Expressway and CUCM validate names on the SAN, "
                  "not the CN")


def wildcard(value: str, *, allow_leading: bool = False) -> Breach | None:
    """A wildcard SAN; with ``allow_leading`` (a profile's ``allow_wildcards``) one leading ``*.`` label passes."""
    if not is_wildcard(value) or (allow_leading and value.startswith("*.") and not is_wildcard(value[2:])):
        return None
    return Breach(rule("san.wildcard"), f"SAN DNS:{printable(value)}: wildcard names are not allowed (Expressway "
                  "and CUCM do not support wildcard certificates)")


def dns_syntax(value: str) -> Breach | None:
    """What is wrong with a DNS SAN besides being a wildcard (a permitted ``*.`` is checked without its star)."""
    name = value[2:] if value.startswith("*.") else value
    problem = None if is_wildcard(name) else dns_name_problem(name)
    return Breach(rule("san.dns"), f"SAN DNS:{printable(value)}: {problem}") if problem else None


def san_type(entry: SanEntry, allowed: tuple[str, ...], profile: str) -> Breach | None:
    if entry.kind in allowed:
        return None
    return Breach(rule("san.type"), f"SAN {printable(entry.text())}: {entry.kind} names are not allowed by profile "
                  f"{profile} (it issues {', '.join(allowed)})")


def ip_syntax(value: str, *, special: bool = False) -> Breach | None:
    """An IP SAN must name a host a peer can reach; ``special`` (a profile's allow_special_ips) allows any."""
    problem = ip_problem(value, special=special)
    return Breach(rule("san.ip"), f"SAN IP:{printable(value)}: {problem}") if problem else None


def duplicates(sans: Sequence[SanEntry]) -> list[Breach]:
    seen: set[str] = set()
    found = []
    for entry in sans:
        if entry.kind != "dns":
            continue
        if entry.value.lower() in seen:
            found.append(Breach(rule("san.duplicate"), f"SAN DNS:{printable(entry.value)}: listed twice"))
        seen.add(entry.value.lower())
    return found


def length(sans: Sequence[SanEntry], limit: int = MAX_SAN_TEXT) -> Breach | None:
    total = san_text_length(list(sans))
    if total <= limit:
        return None
    return Breach(rule("san.length"), f"SAN text is {total} characters; Expressway ignores SAN text past {limit}, "
                  "remove names")


def cn_in_san(common_name: str | None, sans: Sequence[SanEntry]) -> Breach | None:
    """The CN must be one of the SANs (compared case-insensitively), when there is a CN and there are SANs."""
    if not common_name or not sans or common_name.lower() in {entry.value.lower() for entry in sans}:
        return None
    return Breach(rule("san.cn"), f"CN {printable(common_name)} is not among the SANs; Expressway validates on the "
                  "SAN: add the CN to the SAN list")
