"""Findings shared by ``privca audit`` and ``privca check``: a severity, the rule, its source and a remedy.

Every rule names where it comes from (a Cisco document, an RFC, a root program policy), so an administrator can
show the change board why privca says what it says. Exit codes reflect the worst finding (see ``exit_code``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("info", "warning", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# Exit codes when the worst finding reaches --fail-on; chosen above the PrivcaError codes (1-12) so a script can
# tell "the certificates have problems" from "privca could not run".
EXIT_CODES = {"info": 20, "warning": 21, "critical": 22}
FAIL_ON_CHOICES = ("info", "warning", "critical", "never")

# Documents the rules cite. Cisco's list of sources is in docs/audit.md as well.
SOURCES = {
    "FN74362": "Cisco Field Notice FN74362 (Expressway clientAuth EKU) "
               "https://www.cisco.com/c/en/us/support/docs/field-notices/743/fn74362.html",
    "FN74345": "Cisco Field Notice FN74345 (CUCM, IM&P, Unity Connection clientAuth EKU) "
               "https://www.cisco.com/c/en/us/support/docs/field-notices/743/fn74345.html",
    "FN74350": "Cisco Field Notice FN74350 (CUBE clientAuth EKU) "
               "https://www.cisco.com/c/en/us/support/docs/field-notices/743/fn74350.html",
    "TAC225482": "Cisco TAC 225482 Prepare Expressway for Client Auth EKU Sunset "
                 "https://www.cisco.com/c/en/us/support/docs/unified-communications/expressway-series/"
                 "225482-prepare-expressway-for-client.html",
    "TAC225693": "Cisco TAC 225693 Navigate Client EKU Sunset with Expressway X15.5 "
                 "https://www.cisco.com/c/en/us/support/docs/unified-communications/"
                 "telepresence-video-communication-server-expressway/225693-navigate-client-eku-sunset-with.html",
    "TAC213872": "Cisco TAC 213872 Configure and Troubleshoot Collaboration Edge (MRA) Certificates "
                 "https://www.cisco.com/c/en/us/support/docs/unified-communications/expressway/"
                 "213872-configure-and-troubleshoot-collaboration.html",
    "EXP-ADMIN-X15.4": "Expressway Administrator Guide X15.4, Unified Communications "
                       "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/expressway/admin_guide/X15-4/"
                       "exwy_b_cisco-expressway-administrator-guide-x154/exwy_m_unified-communications.html",
    "EXP-CERT-X15.4": "Expressway Certificate Creation and Use Guide X15.4, Generating a CSR "
                      "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/expressway/config_guide/X15-4/"
                      "cert-creation-use/exwy_b_cisco-expressway-certificate-creation-and-use-deployment-guide-x154/"
                      "exwy_m_generating-a-certificate-signing-request.html",
    "EXP-TROUBLE-X14.3": "Expressway Certificate Creation and Use Guide X14.3, Troubleshooting "
                         "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/expressway/config_guide/X14-3/"
                         "cert_creation_use/exwy_b_cisco-expressway-certificate-creation-and-use-deployment-guide-"
                         "x14-3/exwy_m_troubleshooting.html",
    "EXP-MRA-X15.0": "Expressway MRA Deployment Guide X15.0, Requirements "
                     "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/expressway/config_guide/X15-0/mra/"
                     "exwy_b_mra-deployment-guide-x150/exwy_m_requirements-for-mra.html",
    "CUCM-SEC-12.5SU6": "CUCM Security Guide 12.5(1)SU6, Certificates "
                        "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cucm/security/12_5_1SU6/"
                        "cucm_b_security-guide-1251su6/cucm_m_certificates.html",
    "CUCM-ADMIN-12.5SU3": "CUCM Administration Guide 12.5(1)SU3, Manage Certificates "
                          "https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cucm/admin/12_5_1SU3/adminGd/"
                          "cucm_b_administration-guide-1251su3/cucm_b_test-adminguide_chapter_01111.html",
    "TAC221698": "Cisco TAC 221698 Enable Secure Communication Between CMS and CUCM "
                 "https://www.cisco.com/c/en/us/support/docs/conferencing/meeting-server/"
                 "221698-enable-secure-communication-between-cms.html",
    "TAC213821": "Cisco TAC 213821 Configure and Integrate CMS Single Combined "
                 "https://www.cisco.com/c/en/us/support/docs/conferencing/meeting-server/"
                 "213821-configure-and-integrate-cms-single-combi.html",
    "TAC220380": "Cisco TAC 220380 Guide to Harden CUBE "
                 "https://www.cisco.com/c/en/us/support/docs/unified-communications/unified-border-element/"
                 "220380-cisco-guide-to-harden-cisco-unified-bord.html",
    "RFC5280": "RFC 5280 Internet X.509 PKI Certificate and CRL Profile https://www.rfc-editor.org/rfc/rfc5280",
    "RFC8446": "RFC 8446 TLS 1.3, section 4.4.2.2 https://www.rfc-editor.org/rfc/rfc8446#section-4.4.2.2",
    "BR": "CA/Browser Forum TLS Baseline Requirements https://github.com/cabforum/servercert/blob/main/docs/BR.md",
    "OPENSSL-PURPOSE": "OpenSSL checks the EKU of every certificate in the chain (openssl verify -purpose; "
                       "X509_check_purpose) https://docs.openssl.org/3.0/man1/openssl-verification-options/",
    "PYCA-VERIFY": "pyca/cryptography X.509 verification (PolicyBuilder) "
                   "https://cryptography.io/en/latest/x509/verification/",
}


@dataclass(frozen=True)
class Finding:
    """One thing privca found. ``verdict`` labels the certificate when this is its worst finding."""

    severity: str
    rule: str
    message: str
    source: str
    remedy: str | None = None
    verdict: str | None = None

    @property
    def rank(self) -> int:
        return _RANK[self.severity]

    def to_dict(self) -> dict[str, Any]:
        data = {"severity": self.severity, "rule": self.rule, "message": self.message, "source": self.source}
        if self.remedy:
            data["remedy"] = self.remedy
        return data


def finding(severity: str, rule: str, message: str, source: str, *, remedy: str | None = None,
            verdict: str | None = None) -> Finding:
    """A Finding whose ``source`` may be a key of SOURCES (expanded to the document's title and URL)."""
    assert severity in _RANK, severity
    return Finding(severity, rule, message, SOURCES.get(source, source), remedy, verdict)


def worst(findings: list[Finding]) -> str | None:
    """The highest severity among ``findings`` (None for no findings)."""
    return SEVERITIES[max(f.rank for f in findings)] if findings else None


def reaches(severity: str | None, fail_on: str) -> bool:
    return severity is not None and fail_on != "never" and _RANK[severity] >= _RANK[fail_on]


def exit_code(severity: str | None, fail_on: str) -> int:
    """0 when nothing reaches ``fail_on``; otherwise 20 (info), 21 (warning) or 22 (critical)."""
    return EXIT_CODES[severity] if severity is not None and reaches(severity, fail_on) else 0


def headline(findings: list[Finding]) -> Finding | None:
    """The finding that decides a certificate's verdict: the worst one that carries a verdict label."""
    labelled = [f for f in findings if f.verdict]
    if not labelled:
        return None
    top = max(f.rank for f in labelled)
    return next(f for f in labelled if f.rank == top)
