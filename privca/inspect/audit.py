"""privca audit: the inventory that comes first in Cisco's guidance for the clientAuth sunset.

For every certificate found in files, folders and live TLS endpoints: what it is (``certinfo``), its chain up to
the root and whether that root is public (``publictrust``), and a verdict with reasons and the remedy Cisco's
decision tree leads to (``decision``), under the dated public-trust timeline in ``data/public_trust.toml``.
Each certificate is reported once, with every place it was found. Nothing is written; nothing is trusted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.x509.oid import NameOID

from privca.common import decision
from privca.inspect.certinfo import CertInfo, describe
from privca.inspect.chain import ChainPath, Pool, order_problem
from privca.common.findings import SEVERITIES, Finding, finding, headline, worst
from privca.inspect.revstatus import RevocationChecker
from privca.inspect.publictrust import PublicRoots, TrustData, certifi_version, default_public_roots, shipped_trust_data
from privca.inspect.sources import (DEFAULT_TIMEOUT, Loaded, Unit, cert_file_base, handshake, key_file_base, load_unit,
                                   parse_served)
from privca.rules import chain as chain_rules
from privca.rules import keys as key_rules
from privca.rules import names as name_rules
from privca.rules import validity as validity_rules
from privca.rules.catalogue import Breach, grade
from privca.rules.validity import day
from privca.version import __version__

PUBLIC_KINDS = ("public", "formerly-public", "likely-public")
# Endpoints probed at once: enough that a few dozen dead hosts cost one timeout, few enough not to look like a
# scan to an IDS or to exhaust a small appliance's TLS listener.
DEFAULT_CONCURRENCY = 32
MAX_CONCURRENCY = 256


@dataclass
class Root:
    """Where a certificate's chain ends. ``kind``: public, formerly-public, likely-public, private or unknown."""

    kind: str
    name: str | None = None
    stores: list[str] = field(default_factory=list)
    note: str = ""

    def text(self) -> str:
        if self.kind == "public":
            return f"public ({', '.join(self.stores)}): {self.name}"
        if self.kind in ("private", "formerly-public"):
            return f"{self.kind}: {self.name}" + (f" ({self.note})" if self.note else "")
        return f"{self.kind}: {self.note}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "stores": self.stores, "note": self.note}


def absolute_location(location: str) -> str:
    """A file location (``certs/a.pem`` or ``certs/a.pem#2``, the second certificate in it) with an absolute
    path, as every --json writes paths; endpoints (``host:port#1``) and standard input stay as they are."""
    base, _, index = location.rpartition("#")
    if not (base and index.isdigit()):
        base, index = location, ""
    if base.startswith("- ") or os.path.isabs(base) or not os.path.exists(base):
        return location  # an absolute path stays exactly as the user gave it
    return os.path.join(os.getcwd(), base) + (f"#{index}" if index else "")


@dataclass
class CertificateReport:
    info: CertInfo
    locations: list[str]
    chain: list[str]
    root: Root
    findings: list[Finding]

    @property
    def verdict(self) -> str:
        top = headline(self.findings)
        return top.verdict if top and top.verdict else "ok"

    @property
    def severity(self) -> str:
        return worst(self.findings) or "info"

    @property
    def remedy(self) -> str | None:
        top = headline(self.findings)
        return top.remedy if top else None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {**self.info.to_dict(now), "locations": [absolute_location(x) for x in self.locations],
                "chain": self.chain,
                "root": self.root.to_dict(), "verdict": self.verdict, "severity": self.severity,
                "remedy": self.remedy, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class AuditReport:
    generated_at: datetime
    expressway_version: str | None
    stores: list[str]
    trust: TrustData
    certificates: list[CertificateReport]
    errors: list[tuple[str, str]]  # (target, message)
    skipped: int
    units: int

    def worst(self) -> str | None:
        severities = [c.severity for c in self.certificates] + (["warning"] if self.errors else [])
        return worst([finding(s, "", "", "") for s in severities])

    def summary(self) -> dict[str, Any]:
        by_verdict: dict[str, int] = {}
        by_severity = {"info": 0, "warning": 0, "critical": 0}
        for report in self.certificates:
            by_verdict[report.verdict] = by_verdict.get(report.verdict, 0) + 1
            by_severity[report.severity] += 1
        return {"targets": self.units, "certificates": len(self.certificates), "unreadable": len(self.errors),
                "skipped_files": self.skipped, "by_verdict": by_verdict, "by_severity": by_severity,
                "worst": self.worst()}

    def to_dict(self) -> dict[str, Any]:
        now = self.generated_at
        return {
            "privca_version": __version__,
            "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expressway_version": self.expressway_version,  # null when not given (docs/json.md)
            "public_root_stores": self.stores,
            "certifi_version": certifi_version(),
            "trust_data": self.trust.summary(),
            "summary": self.summary(),
            "certificates": [c.to_dict(now) for c in self.certificates],
            "errors": [{"target": absolute_location(target), "message": message} for target, message in self.errors],
        }


@dataclass
class _Entry:
    """One distinct certificate (by SHA-256) and what the files around it say."""

    info: CertInfo
    locations: list[str] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)


def audit(targets: list[str], *, now: datetime, **options: Any) -> AuditReport:
    """Audit files, folders and ``host:port`` endpoints. See ``audit_units`` for the options."""
    from privca.inspect.sources import expand_targets

    return audit_units(expand_targets(targets), now=now, **options)


def audit_units(
    units: list[Unit],
    *,
    now: datetime,
    expressway_version: str | None = None,
    password: bytes | None = None,
    public_roots: PublicRoots | None = None,
    trust: TrustData | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[int], None] | None = None,
    revocation: RevocationChecker | None = None,
) -> AuditReport:
    """Read every unit, then assess every distinct certificate. Bad units become errors, never exceptions.

    Up to ``concurrency`` endpoints are probed at once; the report is the same whatever the concurrency.

    ``expressway_version`` is one of decision.LEGACY, X15_4, X15_5 (see ``decision.parse_expressway_version``).
    """
    public = public_roots if public_roots is not None else default_public_roots()
    trust = trust if trust is not None else shipped_trust_data()
    entries: dict[str, _Entry] = {}
    errors: list[tuple[str, str]] = []
    skipped = 0
    loaded_units: list[tuple[Loaded, list[_Entry]]] = []
    for unit, loaded in zip(units, _load_all(units, password, timeout, concurrency, progress), strict=True):
        if loaded.error:
            errors.append((unit.name, loaded.error))
        elif loaded.skipped:
            skipped += 1
        in_unit = []
        for index, (cert, der) in enumerate(loaded.certs):
            info = describe(cert, der)
            entry = entries.get(info.sha256)
            if entry is None:
                entry = entries[info.sha256] = _Entry(info)
            location = unit.name if len(loaded.certs) == 1 else f"{unit.name}#{index + 1}"
            entry.locations.append(location)
            in_unit.append(entry)
        for remark in loaded.remarks:
            for entry in in_unit[:1]:
                entry.extra.append(finding("info", "input.note", f"{unit.name}: {remark}", "RFC5280"))
        loaded_units.append((loaded, in_unit))

    pool = Pool([e.info for e in entries.values()], public)
    _file_findings(loaded_units, pool)
    reports = [_assess(entry, pool, public, trust, now, expressway_version, revocation) for entry in entries.values()]
    reports.sort(key=lambda r: (-SEVERITIES.index(r.severity), r.info.not_after))
    return AuditReport(now, expressway_version, public.labels, trust, reports, errors, skipped, len(units))


def _load_all(units: list[Unit], password: bytes | None, timeout: float, concurrency: int,
              progress: Callable[[int], None] | None) -> list[Loaded]:
    """Every unit loaded, in the order given. Endpoints are probed ``concurrency`` at a time in threads (the wait
    is the network's, so 20 endpoints that never answer cost about one timeout, not twenty); files, and the
    parsing of what endpoints served, stay in this thread, so the results do not depend on who finished first."""
    from concurrent.futures import Future, ThreadPoolExecutor, as_completed

    def tick() -> None:
        if progress is not None:
            progress(1)

    probes: dict[int, Future[tuple[Loaded, list[bytes]]]] = {}
    files: dict[int, Loaded] = {}
    endpoints = sum(1 for unit in units if unit.kind == "endpoint")
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, endpoints))) as pool:
        for index, unit in enumerate(units):
            if unit.kind == "endpoint":
                probes[index] = pool.submit(handshake, unit, timeout=timeout)
        for index, unit in enumerate(units):
            if unit.kind != "endpoint":
                files[index] = load_unit(unit, password=password, timeout=timeout)
                tick()
        for _ in as_completed(probes.values()):
            tick()
    return [files[index] if index in files else parse_served(*probes[index].result()) for index in range(len(units))]


def _file_findings(loaded_units: list[tuple[Loaded, list[_Entry]]], pool: Pool) -> None:
    """Findings that depend on how a file or endpoint holds a certificate: chain order and private keys."""
    keys_by_base: dict[tuple[str, str], tuple[str, list[object]]] = {}
    for loaded, _ in loaded_units:
        unit = loaded.unit
        if unit.path is not None and loaded.key_publics and not loaded.certs:
            base = key_file_base(unit.path.name)
            if base is not None:
                keys_by_base[(str(unit.path.parent), base)] = (unit.name, loaded.key_publics)
    for loaded, in_unit in loaded_units:
        if not in_unit:
            continue
        leaf = in_unit[0]
        if not loaded.ordered:  # PKCS#7 has no order: the certificate is the one no other in the file names as issuer
            issuers = {e.info.cert.issuer for e in in_unit if e.info.cert.issuer != e.info.cert.subject}
            leaf = next((e for e in in_unit if not e.info.is_ca and e.info.cert.subject not in issuers), leaf)
        elif len(in_unit) > 1 and not leaf.info.is_ca:
            order = chain_rules.order(order_problem([e.info for e in in_unit]), loaded.unit.name)
            if order is not None:
                leaf.extra.append(grade("audit", order, "warning", verdict="chain-order",
                                        remedy="Put the certificate first, then its issuing CA, up to the root."))
        unit = loaded.unit
        keys = loaded.key_publics
        key_source = unit.name
        if not keys and unit.path is not None:
            key_source, keys = keys_by_base.get((str(unit.path.parent), cert_file_base(unit.path.name)), ("", []))
        if keys:
            public_key = leaf.info.cert.public_key()
            if any(key == public_key for key in keys):
                leaf.extra.append(finding("info", "key.match", f"the private key in {key_source} matches", "RFC5280"))
            else:
                leaf.extra.append(finding(
                    "critical", "key.mismatch", f"the private key in {key_source} does not match this certificate",
                    "EXP-CERT-X15.4", verdict="broken",
                    remedy="Find the key that was generated with this certificate's CSR, or make a new CSR and reissue."))


def _assess(entry: _Entry, pool: Pool, public: PublicRoots, trust: TrustData, now: datetime,
            version: str | None, revocation: RevocationChecker | None = None) -> CertificateReport:
    info = entry.info
    path = pool.path(info)
    root = classify_root(path, public, trust)
    findings: list[Finding] = [*entry.extra]
    findings += _validity(info, now)
    findings += _crypto(info)
    findings += _chain(info, path, now)
    findings += _root_findings(info, path, root, trust)
    if not info.is_ca:
        findings += _names(info)
        findings += _timeline(info, path, root, trust, now, version)
    elif info.eku is not None:
        findings += _ca_eku(info, root)
    for problem in info.problems:
        findings.append(finding("warning", "encoding", problem, "RFC5280", verdict="unreadable-parts",
                                remedy="Reissue it; some of its contents cannot be decoded."))
    if revocation is not None:
        findings += revocation.findings(info, issuer_of(path), now)
    return CertificateReport(info, entry.locations, path.labels(), root, findings)


def issuer_of(path: ChainPath) -> CertInfo | None:
    """The certificate that signed the first one of ``path``, when it was found."""
    return path.certs[1] if len(path.certs) > 1 else path.end.issuer


def classify_root(path: ChainPath, public: PublicRoots, trust: TrustData) -> Root:
    """Public (in a public store), formerly public (removed by browsers), private, or unknown (chain incomplete)."""
    if path.complete:
        anchor = path.end.issuer or path.top
        stores = [path.end.store] if path.end.store else public.stores_of(anchor)
        removed = trust.removed(anchor)
        if stores:
            return Root("public", anchor.label, stores)
        if removed:
            return Root("formerly-public", anchor.label, note=f"removed from {', '.join(removed.removed_from)} "
                                                               f"on {removed.date.isoformat()}")
        return Root("private", anchor.label)
    if path.end.status == "bad-signature":
        return Root("unknown", note="chain broken: no certificate with the issuer's name signed it")
    cutoff = trust.cutoff_for(chain_organizations(path))
    if cutoff is not None:
        return Root("likely-public", note=f"issued by {cutoff.name}; root not given")
    return Root("unknown", note="root not given")


def chain_organizations(path: ChainPath) -> list[str]:
    """O= of every issuer on the path: how a public CA is recognised when its root was not given."""
    names: list[str] = []
    for info in path.certs:
        try:
            names += [str(a.value) for a in info.cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        except Exception:  # an undecodable issuer name: nothing to recognise
            continue
    return names


_VALIDITY = {  # rule -> severity, verdict, remedy
    "validity.expired": ("critical", "expired", "Replace it now; peers reject expired certificates."),
    "validity.not-yet-valid": ("warning", "not-yet-valid", "Check the issuing CA's clock."),
    "validity.expiring": ("warning", "expiring", "Renew before {day}."),
}


def _validity(info: CertInfo, now: datetime) -> list[Finding]:
    breach = validity_rules.validity(info.not_before, info.not_after, now)
    if breach is None:
        return []
    severity, verdict, remedy = _VALIDITY[breach.rule.id]
    return [grade("audit", breach, severity, verdict=verdict, remedy=remedy.format(day=day(info.not_after)))]


_KEY = {  # rule -> severity, verdict, remedy
    "key.rsa-min": ("critical", "broken", "Reissue with an RSA-2048 or larger key."),
    "key.rsa-max": ("warning", "broken", "Reissue with an RSA-4096 or smaller key."),
    "key.algorithm": ("warning", "unsupported", "Reissue with an RSA or ECDSA key."),
}


def _crypto(info: CertInfo) -> list[Finding]:
    found = []
    weak = chain_rules.weak_signature(info.signature_hash, self_issued=info.self_issued, label="it")
    if weak is not None:
        found.append(grade("audit", weak, "critical", verdict="broken", remedy="Reissue it signed with SHA-256."))
    for breach in key_rules.key_breaches(info.key_type, info.key_size):
        severity, verdict, remedy = _KEY[breach.rule.id]
        found.append(grade("audit", breach, severity, verdict=verdict, remedy=remedy))
    return found


_NAMES = {  # rule -> remedy (every name finding is a warning, verdict unsupported)
    "san.missing": "Reissue with the node FQDNs as DNS SANs.",
    "san.wildcard": "Reissue with each node's FQDN as a SAN instead of a wildcard.",
    "san.cn": "Reissue with the CN repeated as a DNS SAN.",
    "san.length": "Remove SANs or split the certificate.",
}


def _names(info: CertInfo) -> list[Finding]:
    if not info.has_eku("serverAuth"):
        return []
    breaches: list[Breach | None]
    if not info.sans:
        breaches = [name_rules.missing_san()]
    else:
        wildcards = (name_rules.wildcard(e.value) for e in info.sans if e.kind == "dns")
        breaches = [next((w for w in wildcards if w is not None), None), name_rules.cn_in_san(info.common_name, info.sans),
                    name_rules.length(info.sans)]
    return [grade("audit", breach, "warning", verdict="unsupported", remedy=_NAMES[breach.rule.id])
            for breach in breaches if breach is not None]


def _chain(info: CertInfo, path: ChainPath, now: datetime) -> list[Finding]:
    found = []
    end = path.end
    if end.status == "bad-signature":
        found.append(grade("audit", chain_rules.bad_signature(str(path.top.issuer), path.top.label), "critical",
                           verdict="broken", remedy="Get the issuing CA certificate that really signed it."))
    elif end.status == "missing" and not path.top.self_issued:
        found.append(grade("audit", chain_rules.incomplete(str(path.top.issuer)), "info"))
    purposes = [p for p in ("clientAuth", "serverAuth") if info.eku is not None and p in info.eku]
    for ca in path.cas:
        for purpose in purposes:
            found += [grade("audit", breach, "critical", verdict="broken",
                            remedy=f"Issue it from a CA whose EKU includes {purpose}, or none.")
                      for breach in chain_rules.ca_restricts(ca.label, ca.eku, [purpose])]
        expiry = chain_rules.ca_expiry(ca.label, ca.not_after, info.not_after, now)
        if expiry is not None and expiry.rule.id == "chain.expired":
            found.append(grade("audit", expiry, "critical", verdict="broken",
                               remedy="Renew the CA and reissue under it."))
        elif expiry is not None:
            found.append(grade("audit", expiry, "warning", verdict="chain-expires",
                               remedy=f"Renew before {day(ca.not_after)} or renew the CA."))
    return found


def _root_findings(info: CertInfo, path: ChainPath, root: Root, trust: TrustData) -> list[Finding]:
    found = [finding("info", "root.class", f"root {root.text()}", _root_source(root, trust))]
    anchor = path.end.issuer if path.complete and path.end.issuer else (path.top if path.complete else None)
    removed = trust.removed(anchor) if anchor is not None else None
    if removed is not None:
        affected = removed.applies_to == "all" or info.not_before.date() >= removed.date
        where = " and ".join(removed.removed_from)
        if affected:
            found.append(finding("warning", "root.removed", f"root {removed.name} was removed from {where} on "
                                 f"{removed.date.isoformat()}: browsers do not trust this certificate; UC peers "
                                 "that keep the root in their trust store are not affected", removed.source,
                                 verdict="removed-root",
                                 remedy="Replace it with a certificate from a current root where browsers or Jabber "
                                        "clients must trust it; for mTLS between UC products no action is needed."))
        else:
            found.append(finding("info", "root.removed", f"root {removed.name} was removed from {where} on "
                                 f"{removed.date.isoformat()}; this certificate was issued before, so it stays "
                                 "trusted until it expires", removed.source))
    return found


def _root_source(root: Root, trust: TrustData) -> str:
    if root.kind == "public":
        return "Mozilla root store via certifi https://github.com/certifi/python-certifi"
    return f"privca public-trust data (revision {trust.revision})"


def _ca_eku(info: CertInfo, root: Root) -> list[Finding]:
    if info.has_eku("clientAuth"):
        return []
    severity = "info" if root.kind in PUBLIC_KINDS else "warning"
    return [finding(severity, "ca.eku", f"restricts every certificate under it to {', '.join(info.eku or ())}: "
                    "clientAuth certificates issued under it fail as TLS clients", "OPENSSL-PURPOSE",
                    verdict="restricted", remedy="Issue TLS client certificates from a CA without this restriction.")]


def client_auth_deadline(path: ChainPath, trust: TrustData) -> tuple[datetime, str, str]:
    """The first day renewals lose clientAuth: the CA's own cut-off or Chrome's leaf date, whichever is first."""
    chrome = datetime.combine(trust.chrome_leaf_serverauth_only_from, datetime.min.time(), tzinfo=timezone.utc)
    cutoff = trust.cutoff_for(chain_organizations(path))
    if cutoff is not None:
        ends = datetime.combine(cutoff.client_auth_ends, datetime.min.time(), tzinfo=timezone.utc)
        if ends < chrome:
            return ends, cutoff.name, cutoff.source
    return chrome, trust.chrome_policy, trust.chrome_source


def _timeline(info: CertInfo, path: ChainPath, root: Root, trust: TrustData, now: datetime,
              version: str | None) -> list[Finding]:
    server, client = info.has_eku("serverAuth"), info.has_eku("clientAuth")
    eku_text = "+".join(info.eku) if info.eku is not None else "no EKU extension (any purpose)"
    if not server and not client:
        return [finding("info", "eku.not-tls", f"EKU {eku_text}: not a TLS certificate", "RFC5280",
                        verdict="not-tls")]
    public = root.kind in PUBLIC_KINDS
    if client and not server:
        return [finding("info", "eku.client-only", f"EKU {eku_text}: a TLS client certificate (the X15.5 Client store "
                        "takes it; Cisco's pattern there has serverAuth too)", "TAC225693")]
    if not client:
        severity, remedy = decision.server_only(version, public=public)
        return [finding(severity, "eku.server-only", f"EKU {eku_text}: no clientAuth, so it cannot be presented as a "
                        "TLS client certificate", "TAC225482", verdict="server-only", remedy=remedy)]
    if root.kind == "private":
        return [finding("info", "eku.private-combined", f"EKU {eku_text} from a private CA: outside the browser root "
                        "programs, so clientAuth stays", "FN74362")]
    ends, who, source = client_auth_deadline(path, trust)
    if not public:
        return [finding("info", "timeline.unknown-root", f"EKU {eku_text}; root not given: if this certificate is "
                        f"from a public CA, renewals lose clientAuth by {day(ends)}", trust.chrome_source)]
    # An expired certificate works nowhere: say so, never that it "keeps working" until a day in the past.
    keeps = (f"expired on {day(info.not_after)}" if info.not_after <= now
             else f"keeps working until it expires on {day(info.not_after)}")
    if now < ends and version == decision.X15_5:
        # X15.5 takes a serverAuth-only renewal in its Server store: renewing early buys nothing, the split does.
        return [finding("warning", "timeline.split-at-renewal", f"public certificate with clientAuth: {keeps}; {who} "
                        f"issues clientAuth only until {day(ends - timedelta(days=1))}", source,
                        verdict="split-at-renewal", remedy=decision.split_at_renewal())]
    if now < ends:
        last_issue = ends - timedelta(days=1)
        keeps_until = last_issue + timedelta(days=trust.max_validity_days(last_issue.date()))
        return [finding("warning", "timeline.renew-early", f"public certificate with clientAuth: {keeps}; {who} "
                        f"issues clientAuth only until {day(last_issue)}", source, verdict="renew-early",
                        remedy=decision.renew_early(day(ends), day(keeps_until), version))]
    return [finding("warning", "timeline.clientauth-ends", f"public certificate with clientAuth: {keeps}; {who} "
                    f"stopped issuing clientAuth on {day(ends)}, so its renewal will be serverAuth-only and mTLS "
                    "(Expressway-C, SIP TLS to CUCM, CMS, CUBE) breaks", source, verdict="clientauth-ends",
                    remedy=decision.after_public_client_auth(version))]


__all__ = ["AuditReport", "CertificateReport", "Root", "audit", "audit_units", "classify_root",
           "client_auth_deadline"]
