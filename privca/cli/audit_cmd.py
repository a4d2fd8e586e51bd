"""privca audit / privca check: inventory an estate's certificates; check one before uploading it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from privca.cli.common import JsonOption, StoreOption, note, now, open_store, print_json, progress_bar, read_stdin, table

if TYPE_CHECKING:
    from cryptography import x509

    from privca.inspect.audit import AuditReport
    from privca.inspect.revstatus import RevocationChecker
    from privca.inspect.publictrust import PublicRoots, TrustData

FailOnOption = Annotated[str, typer.Option(
    "--fail-on", help="Exit non-zero when a finding is at least this severe: info, warning, critical or never. "
                      "Exit codes: 20 info, 21 warning, 22 critical (the worst finding).")]
ExpresswayVersionOption = Annotated[str | None, typer.Option(
    "--expressway-version", help="Refine verdicts for this Expressway version: X14, X15.0-X15.3, X15.4 or X15.5.",
    show_default=False)]
PasswordFileOption = Annotated[Path | None, typer.Option(
    "--password-file", help="Password for PKCS#12 (.p12/.pfx) files, read from this file.", show_default=False)]
OfflineOption = Annotated[bool, typer.Option(
    "--offline", help="Do not fetch CRLs or ask OCSP responders (privca's own ledger is still consulted).")]
PublicRootsOption = Annotated[list[Path] | None, typer.Option(
    "--public-roots", help="Also count the roots in this PEM bundle as public (e.g. a Chrome root store "
                           "snapshot); repeatable.", show_default=False)]


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def audit(
    targets: Annotated[list[str], typer.Argument(help="Certificate files (PEM, DER, PKCS#7, PKCS#12), folders "
                                                     "(searched recursively), host:port TLS endpoints, or - for "
                                                     "standard input.",
                                                show_default=False)],
    json_output: JsonOption = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print CSV for spreadsheets instead of a table.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report to this file.",
                                              show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --html file if it exists.")] = False,
    title: Annotated[str | None, typer.Option("--title", help="Title of the HTML report, e.g. your organisation "
                                              "and the estate audited [default: Certificate audit]",
                                              show_default=False)] = None,
    fail_on: FailOnOption = "warning",
    expressway_version: ExpresswayVersionOption = None,
    password_file: PasswordFileOption = None,
    public_roots: PublicRootsOption = None,
    trust_data: Annotated[Path | None, typer.Option(
        "--trust-data", help="Use this public-trust data file (timeline, CA cut-offs, removed roots) instead of "
                             "the one shipped with privca.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each TLS endpoint.")] = 5.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="TLS endpoints probed at once (1 to 256); the "
                                             "report is the same whatever the number.")] = 32,
    offline: OfflineOption = False,
    store: StoreOption = None,
) -> None:
    """Audit certificates: chain and root (public or private), EKUs, key, expiry, and a verdict with its remedy.

    Reads files, folders and live endpoints (Expressway 443/5061/7001, CUCM 8443/5061, CMS 443/5061,
    CUBE 5061). A target that cannot be read is reported and the audit goes on.

    Examples:

        privca audit certs/

        privca audit expe.example.com:443 expc.example.com:7001 --expressway-version X15.3

        privca audit certs/ cucm1.example.com:8443 --html audit.html --csv > audit.csv

        privca audit $(cat endpoints.txt) --concurrency 64 --timeout 5

        privca audit certs/ --html audit.html --title "Example Ltd collaboration estate"

        openssl s_client -connect expe.example.com:443 -showcerts < /dev/null | privca audit -
    """
    from privca.inspect.audit import audit_units
    from privca.common.decision import parse_expressway_version
    from privca.errors import UsageError
    from privca.common.findings import FAIL_ON_CHOICES, exit_code
    from privca.common.fsutil import check_writable_target
    from privca.inspect.sources import expand_targets

    if fail_on not in FAIL_ON_CHOICES:
        raise UsageError(f"--fail-on {fail_on!r}: choose one of {', '.join(FAIL_ON_CHOICES)}")
    if json_output and csv_output:
        raise UsageError("--json and --csv: choose one")
    if not 0 < timeout <= 120:
        raise UsageError("--timeout: must be between 0 and 120 seconds")
    from privca.inspect.audit import MAX_CONCURRENCY

    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency {concurrency}: must be 1 to {MAX_CONCURRENCY}")
    version = parse_expressway_version(expressway_version)
    if html is not None:
        check_writable_target(html, overwrite=force)
    password, roots, trust = _common_inputs(password_file, public_roots, trust_data)
    units = expand_targets(targets, stdin=read_stdin() if "-" in targets else None)
    revocation = _revocation(offline, timeout, store)
    with progress_bar(len(units), "Auditing") as advance:
        report = audit_units(units, now=now(), expressway_version=version, password=password, public_roots=roots,
                             trust=trust, timeout=timeout, concurrency=concurrency, progress=advance,
                             revocation=revocation)
    if html is not None:
        from privca.inspect.report import html_text
        from privca.common.fsutil import atomic_write

        atomic_write(html, html_text(report, title).encode(), overwrite=force)
    if json_output:
        print_json(report.to_dict())
    elif csv_output:
        from privca.inspect.report import csv_text

        sys.stdout.write(csv_text(report))
    else:
        _print_audit(report)
    summary = report.summary()
    note(f"Audited {summary['certificates']} certificates from {summary['targets']} targets: "
         f"{summary['by_severity']['critical']} critical, {summary['by_severity']['warning']} warning; "
         f"{summary['unreadable']} unreadable, {summary['skipped_files']} other files skipped. "
         f"Public roots: {', '.join(report.stores)}; trust data {report.trust.revision}.")
    if html is not None:
        note(f"HTML report: {html}")
    code = exit_code(report.worst(), fail_on)
    if code:
        raise typer.Exit(code)


def _revocation(offline: bool, timeout: float, store: Path | None) -> "RevocationChecker":
    """Revocation checks: privca's ledger when a store is found (an error only when --store names one without a
    CA), and the CRLs and OCSP responders the certificates name unless ``offline``."""
    import hashlib

    from privca.inspect.revstatus import RevocationChecker
    from privca.ledger.certificates import recorded_status

    found = open_store(store)
    if store is not None:
        found.require_ca()
    if not found.is_initialised():
        return RevocationChecker(timeout=timeout, offline=offline)
    ledger = found.ledger

    def lookup(cert: "x509.Certificate") -> "tuple[str, str | None, str | None] | None":
        from cryptography.hazmat.primitives.serialization import Encoding

        # The ledger keys a certificate by its serial (hex, no leading zeros) and SHA-256 fingerprint.
        return recorded_status(ledger, format(cert.serial_number, "x"),
                               hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest())

    return RevocationChecker(timeout=timeout, offline=offline, ledger=lookup)


def _common_inputs(password_file: Path | None, public_roots: list[Path] | None,
                   trust_data: Path | None) -> "tuple[bytes | None, PublicRoots, TrustData | None]":
    from privca.inspect.publictrust import PublicRoots, default_public_roots, load_extra_store, load_trust_data
    from privca.inspect.sources import read_password_file

    password = read_password_file(password_file) if password_file is not None else None
    roots = PublicRoots.mozilla([load_extra_store(p) for p in public_roots]) if public_roots else default_public_roots()
    trust = load_trust_data(trust_data) if trust_data is not None else None
    return password, roots, trust


def _print_audit(report: "AuditReport") -> None:
    from privca.common.names import printable  # file names and messages come from anywhere: no control sequences

    moment = report.generated_at
    rows = []
    for cert in report.certificates:
        info = cert.info
        where = printable(cert.locations[0], 300) + (f" (+{len(cert.locations) - 1})" if len(cert.locations) > 1 else "")
        eku = "+".join(info.eku) if info.eku is not None else "(any)"
        rows.append([cert.severity, cert.verdict, info.label, info.position, where, cert.root.kind, eku,
                     f"{info.not_after:%Y-%m-%d} ({info.days_left(moment)}d)"])
    for target, message in report.errors:
        rows.append(["warning", "unreadable", "", "", printable(target, 300), "", "", printable(message, 300)])
    table("Certificate audit", ["severity", "verdict", "certificate", "position", "where", "root", "EKU", "expires"],
          rows, drop_first=("position", "root", "EKU", "where"))
    flagged = [c for c in report.certificates if c.severity != "info"]
    if flagged:
        print("\nFindings and remedies:")
    for cert in flagged:
        print(f"- {cert.info.label} ({printable(cert.locations[0], 300)}): {cert.verdict}")
        for item in cert.findings:
            if item.severity != "info":
                print(f"    {item.severity} {item.rule}: {item.message}")
                print(f"      source: {item.source}")
        if cert.remedy:
            print(f"    remedy: {cert.remedy}")


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def check(
    cert: Annotated[Path, typer.Argument(help="The certificate to upload (PEM, DER, PKCS#7 or PKCS#12); a full chain "
                                              "file is fine.", show_default=False)],
    role: Annotated[str, typer.Option("--for", help="Where it goes: expressway-c, expressway-e, expressway-server, "
                                                    "expressway-client, cucm, unity, cms or cube.",
                                      show_default=False)],
    key: Annotated[Path | None, typer.Option("--key", help="The private key file that goes with it.",
                                             show_default=False)] = None,
    chain: Annotated[Path | None, typer.Option("--chain", help="The CA certificates (intermediates, root) for it.",
                                               show_default=False)] = None,
    expressway_version: ExpresswayVersionOption = None,
    password_file: PasswordFileOption = None,
    public_roots: PublicRootsOption = None,
    fail_on: FailOnOption = "warning",
    offline: OfflineOption = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Predict whether a product will accept a certificate and whether mTLS will work in its roles.

    Checks EKUs for the role, SAN rules, key type and size, the key file, the chain (complete, ordered, EKU
    consistent), validity and signature hash. Every finding names its rule and its source.

    Examples:

        privca check expc.pem --key expc.key --chain ca-chain.pem --for expressway-c

        privca check expe.pem --for expressway-e --expressway-version X15.4

        privca check cucm-tomcat.pem --chain chain.pem --for cucm --json
    """
    from privca.inspect.check import check_certificate
    from privca.common.decision import parse_expressway_version
    from privca.errors import UsageError
    from privca.common.findings import FAIL_ON_CHOICES, exit_code

    if fail_on not in FAIL_ON_CHOICES:
        raise UsageError(f"--fail-on {fail_on!r}: choose one of {', '.join(FAIL_ON_CHOICES)}")
    version = parse_expressway_version(expressway_version)
    password, roots, _ = _common_inputs(password_file, public_roots, None)
    moment = now()
    report = check_certificate(cert, role=role, now=moment, key_path=key, chain_path=chain,
                               expressway_version=version, password=password, public_roots=roots,
                               revocation=_revocation(offline, 5.0, store))
    if json_output:
        print_json(report.to_dict(moment))
    else:
        from privca.common.decision import version_text

        info = report.certificate
        print(f"{cert}: {report.verdict.upper()} for {role} (profile {report.profile}; Expressway version "
              f"{version_text(version)})")
        print(f"  {info.label}: EKU {'+'.join(info.eku) if info.eku is not None else '(any)'}; {info.key_text}; "
              f"until {info.not_after:%Y-%m-%d}; chain {' -> '.join(report.chain)}")
        for item in report.findings:
            print(f"  {item.severity:8} {item.rule}: {item.message}")
            if item.severity != "info":
                print(f"           source: {item.source}")
    code = exit_code(report.severity, fail_on)
    if code:
        raise typer.Exit(code)

