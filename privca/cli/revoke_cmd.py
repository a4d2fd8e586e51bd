"""privca revoke / unhold / crl / status / publish: revocation and CRLs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets, note,
                     now, open_store, print_json, table)

REASON_HELP = ("keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, "
               "unspecified, or certificateHold (a suspension; undo it with privca unhold).")

# `privca status` exit codes, as monitoring plugins (Nagios, Icinga, Zabbix) read them.
STATUS_EXIT = {"fresh": 0, "due": 1, "stale": 2, "missing": 2}


def _print_revocation(record: dict[str, Any], verb: str) -> None:
    what = "CA" if record["kind"] == "ca" else "certificate"
    print(f"{verb} {what} {record['serial']}  {record['subject']}")
    if record["revocation_reason"]:
        print(f"  reason {record['revocation_reason']}, since {record['revoked_at']}")
    note(f"The change reaches peers with {record['crl_of']}'s next CRL: privca crl && privca publish DIR "
         "(privca serve answers OCSP with it at once)")


def revoke(
    serial: Annotated[str, typer.Argument(help="Serial in hex, as privca list or OpenSSL shows it (colons allowed), or its first 8 or more digits.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", "-r", help=REASON_HELP, show_default=False)],
    ca: Annotated[bool, typer.Option("--ca", help="The serial is an issuing CA: revoke it (it goes on the root's "
                                     "CRL, and every certificate under it stops validating).")] = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a certificate, or put it on hold (--reason certificateHold).

    The revocation is recorded in the ledger at once; peers learn it from the next CRL (privca crl, then
    privca publish) or from privca serve's OCSP responder.

    Examples:

        privca revoke 3f2a9c0d --reason keyCompromise

        privca revoke 3f2a9c0d --reason certificateHold

        privca revoke 51be07a4 --reason superseded --ca
    """
    from privca.revocation.revoke import revoke as revoke_serial

    record = revoke_serial(open_store(store), serial, reason, now=now(), ca=ca)
    if json_output:
        print_json(record)
        return
    _print_revocation(record, "Put on hold" if record["status"] == "hold" else "Revoked")


def unhold(
    serial: Annotated[str, typer.Argument(help="Serial of a certificate on hold, in hex, or its first 8 or more digits.", show_default=False)],
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Release a certificate from hold (certificateHold): it is valid again and leaves the next CRL.

    Example:

        privca unhold 3f2a9c0d
    """
    from privca.revocation.revoke import release

    record = release(open_store(store), serial, now=now())
    if json_output:
        print_json(record)
        return
    _print_revocation(record, "Released")


def crl(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write <ca>.crl (DER) and <ca>.crl.pem here.",
                                             show_default=False)] = None,
    days: Annotated[int, typer.Option("--days", help="Days until nextUpdate.")] = 7,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a new CRL for every CA: the issuing CA's lists revoked certificates, the root's revoked intermediates.

    Each CRL gets the CA's next CRL number and is kept in the ledger, where privca publish and privca serve
    find it. Run it daily (see docs/revocation.md): an expired CRL makes Expressway treat every certificate of
    that CA as revoked.

    Examples:

        privca crl

        privca crl --out crl/ --days 7
    """
    from privca.revocation.revoke import check_days, issue_crls

    check_days(days)
    target = open_store(store)
    target.require_ca()
    records = issue_crls(target, ca_secrets(passphrase_file, pin_file, pkcs11_module), now=now(), days=days, out_dir=out)
    if json_output:
        print_json(records, "crls")
        return
    table("CRLs signed", ["CA", "CRL #", "entries", "this update", "next update", "URL"],
          [[r["ca"], str(r["crl_number"]), str(r["entries"]), r["this_update"], r["next_update"], r["crl_url"] or "-"]
           for r in records])
    for record in records:
        for path in record.get("files", []):
            note(f"Wrote {path}")
    note("Next: privca publish DIR   (the web server's document root for the CRL URLs)")


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    return f"{sign}{days}d {hours}h" if days else f"{sign}{hours}h {minutes}m"


def status(
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show how fresh each CA's CRL is; exit 0 if all are fresh, 1 if one is due, 2 if one is stale or missing.

    A CRL is due when less than a third of its lifetime is left, or when revocations changed since it was
    signed; stale once its nextUpdate has passed. A store whose issuing CA is missing, revoked or expired is
    critical too: nothing can be issued. The first line is a one-line summary, and the exit codes suit
    monitoring (Nagios/Icinga: OK, WARNING, CRITICAL).

    Examples:

        privca status

        privca status --json
    """
    from privca.revocation.revoke import crl_status, issuing_health

    target, moment = open_store(store), now()
    report = crl_status(target, moment)
    issuing = issuing_health(target, moment)
    worst = max([STATUS_EXIT[r["state"]] for r in report] + [0 if issuing["ok"] else 2])
    if json_output:
        print_json({"summary": _summary(worst, report, issuing), "issuing": issuing, "crls": report})
        sys.exit(worst)
    print(_summary(worst, report, issuing))
    if report:
        table("CRL status", ["CA", "role", "CRL #", "next update", "age", "left", "pending", "state", "CRL URL",
                             "OCSP URL"],
              [[r["ca"], r["role"], str(r["crl_number"] or "-"), r["next_update"] or "-", _duration(r["age_seconds"]),
                _duration(r["remaining_seconds"]), str(r["pending_changes"]), r["state"], r["crl_url"] or "-",
                r["ocsp_url"] or "-"] for r in report], drop_first=("OCSP URL", "CRL URL", "pending", "age"))
    if any(r["state"] != "fresh" for r in report):
        note("Renew with: privca crl && privca publish DIR")
    if not issuing["ok"]:
        note("Issue again with: privca rotate intermediate (or privca rotate root when the root is gone too)")
    sys.exit(worst)


def _summary(worst: int, report: list[dict[str, Any]], issuing: dict[str, Any]) -> str:
    """One line for a monitoring system's service text, e.g. ``CRL WARNING: issuing-2 due``."""
    word = {0: "OK", 1: "WARNING", 2: "CRITICAL"}[worst]
    problems = [f"{r['ca']} {r['state']}" for r in report if r["state"] != "fresh"]
    if not issuing["ok"]:
        problems.insert(0, issuing["problem"])
    return f"privca {word}: " + ("; ".join(problems) if problems else f"{len(report)} CRL(s) fresh")


def publish(
    directory: Annotated[Path, typer.Argument(help="Document root of the web server that serves the CRL URLs.",
                                              show_default=False)],
    ocsp: Annotated[bool, typer.Option("--ocsp/--no-ocsp", help="Also write pre-signed OCSP responses for CAs "
                                       "with an OCSP URL (needs the CA passphrase when some must be signed).")] = True,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write each CA's latest CRL and pre-signed OCSP responses under the paths of their URLs, for a web server.

    The CRL goes under the path its CRL URL names (DER, plus a .pem copy), the pre-signed OCSP responses (RFC
    5019) under the path the OCSP URL names, so a web server such as nginx answers both from files.

    With the CRL URL http://pki.example.com/crl/issuing-1.crl the CRL goes to DIR/crl/issuing-1.crl; with the
    OCSP URL http://pki.example.com/ocsp each certificate's response goes to DIR/ocsp/<base64 GET request>.
    Responses are valid for an hour and re-signed when half of that has passed or the status changed: run this
    every 10 minutes (docs/operations.md has a systemd timer). Files are replaced atomically, so a web server
    never serves half a file.

    Example:

        privca crl && privca publish /var/www/pki
    """
    from privca.revocation.publish import publish as publish_crls

    secrets = ca_secrets(passphrase_file, pin_file, pkcs11_module) if ocsp else None
    report = publish_crls(open_store(store), directory, now=now(), secrets=secrets)
    if json_output:
        print_json(report, "crls")
        return
    for item in report:
        if "skipped" in item:
            note(f"{item['ca']}: skipped ({item['skipped']})")
        elif "ocsp_responses" in item:
            print(f"{item['ca']}: OCSP for {item['certificates']} certificates -> {item['ocsp_url']} "
                  f"({item['ocsp_responses']} responses, SHA-1 and SHA-256; {item['signed']} newly signed, "
                  f"{item['removed']} stale removed)")
        else:
            print(f"{item['ca']}: CRL #{item['crl_number']} (next update {item['next_update']}) -> {item['files'][0]}")
