"""The catalogue: every certificate rule, the documents behind it, and how serious each command calls it.

A command grades a breach with ``grade``, which refuses a severity the catalogue does not list for that command,
so the table in docs/rules.md (``markdown``) cannot drift from what privca does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from privca.common.findings import SOURCES, Finding, finding

Command = Literal["policy", "check", "audit"]
COMMANDS: tuple[Command, ...] = ("policy", "check", "audit")
REFUSE = "refuse"  # the only thing policy does with a breach: the CSR gets no certificate


@dataclass(frozen=True)
class Rule:
    """One rule. ``finding`` is the name check and audit print; several rules may share one (``key.size``)."""

    id: str
    finding: str
    asks: str  # what the rule asks of a certificate, in an administrator's words
    sources: tuple[str, ...]  # keys of findings.SOURCES
    policy: tuple[str, ...] = ()  # () when the command does not apply the rule
    check: tuple[str, ...] = ()
    audit: tuple[str, ...] = ()
    note: str = ""  # when the severity depends on the product role or the profile

    @property
    def source(self) -> str:
        return self.sources[0]

    def severities(self, command: Command) -> tuple[str, ...]:
        return {"policy": self.policy, "check": self.check, "audit": self.audit}[command]


@dataclass(frozen=True)
class Breach:
    """A certificate (or CSR) breaks ``rule``; ``message`` says how, without judging how bad that is."""

    rule: Rule
    message: str

    @property
    def finding(self) -> str:
        return self.rule.finding


_R = (REFUSE,)
CRIT, WARN, INFO = ("critical",), ("warning",), ("info",)

_RULES = [
    # Keys
    Rule("key.rsa-min", "key.size", "An RSA key has at least 2048 bits.", ("EXP-CERT-X15.4", "BR"),
         _R, CRIT, CRIT),
    Rule("key.rsa-max", "key.size", "An RSA key has at most 4096 bits.", ("EXP-TROUBLE-X14.3", "CUCM-SEC-12.5SU6"),
         _R, CRIT, WARN, "check: for Expressway, CUCM and Unity roles; for CMS and CUBE the key.profile rule "
         "reports it"),
    Rule("key.rsa-exponent", "key.exponent", "An RSA public exponent is odd, at least 65537 and at most 32 bits.", ("BR",), _R),
    Rule("key.algorithm", "key.type", "The key is RSA or ECDSA.", ("EXP-CERT-X15.4",), _R, WARN, WARN),
    Rule("key.profile", "key.type", "The key type is one the profile allows.", ("EXP-CERT-X15.4",
         "CUCM-ADMIN-12.5SU3", "TAC220380"), _R, WARN),
    # Names
    Rule("san.missing", "san.missing", "There is a subjectAltName: Cisco products match names on the SAN.",
         ("EXP-ADMIN-X15.4",), _R, CRIT, WARN, "policy and check: when the profile requires SANs; audit: for "
         "serverAuth certificates"),
    Rule("san.type", "san.type", "Every SAN is of a type the profile issues (DNS, IP).", ("EXP-ADMIN-X15.4",),
         _R, WARN),
    Rule("san.dns", "san.dns", "A DNS SAN is a fully qualified LDH host name (IDNA A-labels checked).",
         ("RFC5280",), _R, WARN),
    Rule("san.ip", "san.ip", "An IP SAN is an IP address.", ("RFC5280",), _R),
    Rule("san.duplicate", "san.duplicate", "No DNS SAN is listed twice.", ("RFC5280",), _R),
    Rule("san.wildcard", "san.wildcard", "No wildcard SAN (unless the profile allows a leading *.).",
         ("TAC213872", "CUCM-SEC-12.5SU6"), _R, CRIT + WARN, WARN, "check: critical for roles whose product is "
         "documented not to take wildcards (Expressway, CUCM, Unity), warning otherwise"),
    Rule("san.length", "san.length", "The SAN text is at most 999 characters (the profile's max_total_length).",
         ("TAC213872",), _R, WARN, WARN),
    Rule("san.cn", "san.cn", "The CN is repeated among the SANs.", ("EXP-ADMIN-X15.4",), _R, WARN, WARN,
         "policy and check: when the profile says cn_must_be_in_san; audit: for serverAuth certificates"),
    # Extended key usage
    Rule("eku.role", "eku.role", "The EKU covers what the product role needs (clientAuth for mTLS roles).",
         ("FN74362", "FN74345", "TAC225693", "TAC213821", "TAC220380"), (), CRIT + INFO, (),
         "policy grants the profile's EKUs whatever the CSR asks; check: info when covered"),
    # Validity
    Rule("validity.expired", "validity.expired", "The certificate has not expired.", ("RFC5280",), (), CRIT, CRIT),
    Rule("validity.not-yet-valid", "validity.not-yet-valid", "The certificate is already valid.", ("RFC5280",),
         (), CRIT, WARN),
    Rule("validity.expiring", "validity.expiring", "The certificate has more than 30 days left.", ("RFC5280",),
         (), WARN, WARN),
    # Chain
    Rule("signature.weak", "signature.sha1", "No SHA-1 or MD5 signature, except a root's own self-signature.",
         ("BR", "EXP-CERT-X15.4"), (), CRIT, CRIT),
    Rule("chain.signature", "chain.signature", "The issuer named by the certificate really signed it.",
         ("RFC5280",), (), CRIT, CRIT),
    Rule("chain.incomplete", "chain.incomplete", "Every issuer up to the root is at hand.", ("EXP-MRA-X15.0",
         "RFC5280"), (), WARN, INFO, "check: when a chain file was given"),
    Rule("chain.not-ca", "chain.not-ca", "Every issuer on the path is a CA (basicConstraints CA:TRUE).",
         ("TAC220380",), (), CRIT),
    Rule("chain.eku", "chain.eku", "No CA on the path restricts its EKU to exclude the certificate's purposes.",
         ("OPENSSL-PURPOSE",), (), CRIT, CRIT),
    Rule("chain.expired", "chain.expired", "No CA on the path has expired.", ("RFC5280",), (), CRIT, CRIT),
    Rule("chain.outlives", "chain.outlives", "The certificate does not outlive a CA on its path.", ("RFC5280",),
         (), WARN, WARN),
    Rule("chain.order", "chain.order", "A file holds the certificate first, then each issuer up to the root.",
         ("TAC221698",), (), WARN, WARN),
]

CATALOGUE: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    return CATALOGUE[rule_id]


def grade(command: Command, breach: Breach, severity: str, *, source: str | None = None,
          remedy: str | None = None, verdict: str | None = None) -> Finding:
    """A finding for ``breach`` at ``severity``: a severity the catalogue does not list for ``command`` is a bug."""
    if severity not in breach.rule.severities(command):
        raise ValueError(f"{command} grades {breach.rule.id} {severity}; the catalogue says "
                         f"{', '.join(breach.rule.severities(command)) or 'not applied'}")
    return finding(severity, breach.finding, breach.message, source or breach.rule.source, remedy=remedy,
                   verdict=verdict)


def refusal(breach: Breach) -> str:
    """Why policy refuses a CSR that breaks ``breach.rule``: its message (a rule policy does not apply is a bug)."""
    if REFUSE not in breach.rule.policy:
        raise ValueError(f"policy refuses for {breach.rule.id}; the catalogue says it does not apply it")
    return breach.message


def markdown() -> str:
    """docs/rules.md: the catalogue as a table (tests/test_rules.py keeps the file equal to this)."""
    lines = [
        "# Certificate rules",
        "",
        "privca applies one set of rules in three places. `privca issue` and `privca renew` (the issuance policy)",
        "refuse a CSR that breaks one; `privca check` (before you upload a certificate to a product) and",
        "`privca audit` (the inventory of what is deployed) report each breach as a finding, with a severity that",
        "suits the command. The *finding* column is the rule name `check` and `audit` print. A dash means the",
        "command does not apply the rule. `check` and `audit` report further findings of their own (key files,",
        "roots and the clientAuth timeline): see [audit.md](audit.md).",
        "",
        "This page is generated from privca's rule catalogue; a test keeps the two equal.",
        "",
        "| rule | finding | asks | issue (policy) | check | audit | sources |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in _RULES:
        cells = [" or ".join(item.severities(command)) or "-" for command in COMMANDS]
        asks = item.asks + (f" ({item.note})" if item.note else "")
        lines.append(f"| {item.id} | `{item.finding}` | {asks} | {' | '.join(cells)} | {', '.join(item.sources)} |")
    lines += ["", "## Sources", ""]
    used = sorted({source for item in _RULES for source in item.sources})
    lines += [f"- **{key}**: {SOURCES[key]}" for key in used]
    return "\n".join(lines) + "\n"
