"""One rule catalogue: policy (issue), check and audit apply the same rules, each at the severities the catalogue
lists for it, and docs/rules.md is the catalogue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW
from estate import Estate, build_estate

from privca.common.findings import Finding, finding
from privca.common.names import SanEntry
from privca.inspect.audit import audit
from privca.inspect.check import ROLES, check_certificate
from privca.inspect.publictrust import PublicRoots
from privca.issuance.policy import request_from_certificate
from privca.issuance.profiles import load_profile
from privca.rules import chain as chain_rules
from privca.rules import keys as key_rules
from privca.rules import names as name_rules
from privca.rules import validity as validity_rules
from privca.rules.catalogue import CATALOGUE, Breach, Command, grade, markdown, refusal, rule

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    return build_estate(tmp_path_factory.mktemp("rules") / "estate", NOW)


def test_docs_rules_page_is_the_catalogue() -> None:
    # To regenerate after changing the catalogue: scripts/rules-doc
    assert DOC.read_text() == markdown()
    for rule_id, item in CATALOGUE.items():
        assert f"| {rule_id} | `{item.finding}` |" in DOC.read_text()


def test_a_severity_the_catalogue_does_not_list_is_refused() -> None:
    wildcard = name_rules.wildcard("*.example.com")
    assert wildcard is not None
    assert grade("check", wildcard, "critical").severity == "critical"
    with pytest.raises(ValueError, match="audit grades san.wildcard critical"):
        grade("audit", wildcard, "critical")
    # Policy refuses only what the catalogue says it applies.
    assert "wildcard names are not allowed" in refusal(wildcard)
    with pytest.raises(ValueError, match="validity.expired"):
        refusal(Breach(rule("validity.expired"), "expired"))


def _out_of_catalogue(findings: list[Finding], command: Command) -> list[str]:
    """Findings named like a catalogue rule whose severity no catalogue rule of that name lists for ``command``."""
    allowed: dict[str, set[str]] = {}
    for item in CATALOGUE.values():
        allowed.setdefault(item.finding, set()).update(item.severities(command))
    return [f"{f.rule} {f.severity}" for f in findings if f.rule in allowed and f.severity not in allowed[f.rule]]


def test_check_and_audit_report_catalogue_rules_at_catalogue_severities(estate: Estate) -> None:
    public = PublicRoots([estate.store_entry()])
    report = audit([str(estate.folder)], now=NOW, public_roots=public)
    audited = [f for cert in report.certificates for f in cert.findings]
    assert _out_of_catalogue(audited, "audit") == []
    checked = []
    for file_name in estate.leaves:
        for role in ROLES:
            checked += check_certificate(estate.folder / file_name, role=role, now=NOW, public_roots=public).findings
    assert _out_of_catalogue(checked, "check") == []
    named = {f.rule for f in audited + checked}
    assert {"san.wildcard", "validity.expiring", "validity.expired", "chain.eku", "signature.sha1"} <= named
    # Negative control: the same helper catches a finding graded outside the catalogue.
    assert _out_of_catalogue([finding("critical", "san.cn", "x", "RFC5280")], "audit") == ["san.cn critical"]


def test_one_wildcard_rule_three_severities(estate: Estate) -> None:
    """The same certificate: issuance refuses it, check fails it for Expressway (documented) and warns for CUBE,
    audit warns."""
    issued = estate.leaves["wildcard.pem"]
    profile = load_profile("expressway-c")
    request, problems = request_from_certificate(issued.cert, issued.cert.public_key(), "wildcard.pem", profile)
    assert request is None and any("wildcard names are not allowed" in p for p in problems)
    path = estate.folder / "wildcard.pem"
    severities = {role: {f.severity for f in check_certificate(path, role=role, now=NOW).findings
                         if f.rule == "san.wildcard"} for role in ("expressway-c", "cube")}
    assert severities == {"expressway-c": {"critical"}, "cube": {"warning"}}
    audited = audit([str(path)], now=NOW)
    assert {f.severity for f in audited.certificates[0].findings if f.rule == "san.wildcard"} == {"warning"}
    # Negative control: a certificate without a wildcard passes the rule in all three.
    clean = estate.leaves["private-combined.pem"]
    assert request_from_certificate(clean.cert, clean.cert.public_key(), "clean.pem", profile)[0] is not None
    assert not any(f.rule == "san.wildcard" for f in check_certificate(estate.folder / "private-combined.pem",
                                                                       role="expressway-c", now=NOW).findings)


@pytest.mark.parametrize(("bits", "rule_id"), [(1024, "key.rsa-min"), (2047, "key.rsa-min"), (2048, None),
                                               (4096, None), (4097, "key.rsa-max"), (8192, "key.rsa-max")])
def test_rsa_size_bounds(bits: int, rule_id: str | None) -> None:
    found = key_rules.rsa_size(bits)
    assert (found.rule.id if found else None) == rule_id


@pytest.mark.parametrize(("exponent", "bad"), [(3, True), (65536, True), (65537, False), (65539, False)])
def test_rsa_exponent(exponent: int, bad: bool) -> None:
    assert (key_rules.rsa_exponent(exponent) is not None) == bad


def test_key_algorithm_and_profile() -> None:
    assert key_rules.algorithm("ed25519") is not None and key_rules.algorithm("ec") is None
    assert key_rules.allowed_by_profile("rsa:2048", ("rsa:2048",), "p") is None
    found = key_rules.allowed_by_profile("ec:secp521r1", ("rsa:2048",), "p")
    assert found is not None and "key type ec:secp521r1 is not allowed by profile p" in found.message


def test_name_rules() -> None:
    cn, other = SanEntry("dns", "expc1.example.com"), SanEntry("dns", "expc2.example.com")
    assert name_rules.cn_in_san("EXPC1.example.com", [cn]) is None  # case-insensitive, as DNS is
    assert name_rules.cn_in_san("expc1.example.com", [other]) is not None
    assert name_rules.wildcard("*.example.com", allow_leading=True) is None
    assert name_rules.wildcard("a.*.example.com", allow_leading=True) is not None
    assert name_rules.wildcard("expc1.example.com") is None
    assert name_rules.dns_syntax("expc1.example.com.") is not None and name_rules.dns_syntax("*.example.com") is None
    assert [b.rule.id for b in name_rules.duplicates([cn, SanEntry("dns", "EXPC1.example.com")])] == ["san.duplicate"]
    assert name_rules.duplicates([cn, other]) == []
    long_list = [SanEntry("dns", f"node{i:03}.example.com") for i in range(50)]
    assert name_rules.length(long_list) is not None and name_rules.length(long_list[:10]) is None
    assert name_rules.san_type(SanEntry("ip", "192.0.2.1"), ("dns",), "p") is not None
    assert name_rules.san_type(SanEntry("ip", "192.0.2.1"), ("dns", "ip"), "p") is None


def test_validity_window() -> None:
    start = NOW - timedelta(days=10)
    ids = {days: (b.rule.id if (b := validity_rules.validity(start, NOW + timedelta(days=days), NOW)) else None)
           for days in (-1, 30, 31)}
    assert ids == {-1: "validity.expired", 30: "validity.expiring", 31: None}
    assert validity_rules.validity(NOW + timedelta(hours=1), NOW + timedelta(days=90), NOW) is not None
    assert validity_rules.status_at("valid", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z") == "expired"
    assert validity_rules.status_at("valid", "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z") == "valid"
    assert validity_rules.status_at("revoked", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z") == "revoked"


def test_chain_rules_and_files() -> None:
    later, sooner = NOW + timedelta(days=400), NOW + timedelta(days=100)
    assert chain_rules.ca_expiry("CA", later, sooner, NOW) is None
    outlives = chain_rules.ca_expiry("CA", sooner, later, NOW)
    assert outlives is not None and outlives.rule.id == "chain.outlives"
    expired = chain_rules.ca_expiry("CA", NOW - timedelta(days=1), later, NOW)
    assert expired is not None and expired.rule.id == "chain.expired"
    assert [b.rule.id for b in chain_rules.ca_restricts("CA", ("serverAuth",), ["serverAuth", "clientAuth"])] == \
        ["chain.eku"]
    assert chain_rules.ca_restricts("CA", None, ["clientAuth"]) == []  # no EKU: every purpose
    assert chain_rules.weak_signature("sha1", self_issued=True, label="root") is None
    assert chain_rules.weak_signature("sha1", self_issued=False, label="x") is not None
    files: dict[Any, bytes] = {kind: chain_rules.file_content(kind, "LEAF\n", ["CA\n", "ROOT\n"])
                               for kind in ("cert", "chain", "fullchain")}
    assert files == {"cert": b"LEAF\n", "chain": b"CA\nROOT\n", "fullchain": b"LEAF\nCA\nROOT\n"}
