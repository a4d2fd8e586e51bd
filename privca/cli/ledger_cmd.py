"""privca list / privca show: what the ledger holds."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from privca.errors import UsageError
from privca.cli.common import JsonOption, StoreOption, now, open_store, print_json, table

STATUSES = ("valid", "expired", "revoked", "hold")
MAX_DAYS = 36500  # a century: beyond it the date arithmetic overflows, and no certificate lives that long


def list_certificates(
    status: Annotated[list[str] | None, typer.Option("--status", help="valid, expired, revoked or hold (repeatable)")] = None,
    expiring_within: Annotated[int | None, typer.Option("--expiring-within", help="Only valid certificates that expire "
                                                        "within this many days.", show_default=False)] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="Only this profile.")] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List issued certificates, soonest expiry first.

    Examples:

        privca list

        privca list --expiring-within 30

        privca list --status revoked --json
    """
    for item in status or []:
        if item not in STATUSES:
            raise UsageError(f"--status {item!r}: choose from {', '.join(STATUSES)}")
    if expiring_within is not None and not 0 <= expiring_within <= MAX_DAYS:
        raise UsageError(f"--expiring-within {expiring_within}: must be 0 to {MAX_DAYS} days")
    from privca.ledger import cas, certificates
    from privca.common.serials import serial_text
    from privca.ledger.records import iso

    ledger = open_store(store).require_ca()
    moment = now()
    statuses = status or ()
    if json_output:
        names = cas.names(ledger)
        print_json([cert.to_json(now=moment, names=names) for cert in certificates.query(
            ledger, now=moment, statuses=statuses, expiring_within_days=expiring_within, profile=profile)],
            "certificates")
    elif csv_output:
        import csv

        names = cas.names(ledger)
        writer = csv.writer(sys.stdout)
        writer.writerow(["serial", "status", "profile", "subject", "sans", "issuer", "not_before", "not_after"])
        for cert in certificates.query(ledger, now=moment, statuses=statuses, expiring_within_days=expiring_within,
                                       profile=profile):
            writer.writerow([serial_text(cert.serial), cert.shown_status(moment), cert.profile, cert.subject, " ".join(cert.sans),
                             names.get(cert.issuer_id, cert.issuer_id), iso(cert.not_before), iso(cert.not_after)])
    else:
        # Only the columns of the table: the ledger's listing index covers them, so no certificate row is read.
        table("Certificates", ["serial", "status", "profile", "subject", "expires"],
              [[serial_text(cert.serial), cert.shown_status, cert.profile, cert.subject, cert.expires]
               for cert in certificates.listing(ledger, now=moment, statuses=statuses,
                                                expiring_within_days=expiring_within, profile=profile)],
              drop_first=("profile",))


def show(
    serial: Annotated[str, typer.Argument(help="Serial in hex, as privca list or OpenSSL shows it (colons allowed), or its first 8 or more digits.", show_default=False)],
    pem: Annotated[bool, typer.Option("--pem", help="Print only the certificate PEM.")] = False,
    fullchain: Annotated[bool, typer.Option("--fullchain", help="Print the certificate followed by its issuing CA "
                                            "and root: the .fullchain.pem file, written again from the ledger.")]
    = False,
    chain: Annotated[bool, typer.Option("--chain", help="Print only its issuing CA and root: the .chain.pem file.")]
    = False,
    chain_for: Annotated[str | None, typer.Option(
        "--chain-for", help="During a root rollover: print the chain for peers that trust only this root (root-1, "
        "root-2, ...): its issuing CA and the cross-certificate, without its own self-signed root.",
        show_default=False)] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one certificate from the ledger.

    Examples:

        privca show 3f2a9c0d

        privca show 3f2a9c0d --pem > expc.pem

        privca show 3f2a9c0d --fullchain > expc.fullchain.pem

        privca show 3f2a9c0d --chain-for root-1 > expc.chain-root-1.pem
    """
    from privca.ledger import cas, certificates

    target = open_store(store)
    ledger = target.require_ca()
    cert = certificates.by_serial(ledger, certificates.resolve_serial(ledger, serial))
    if chain_for is not None:
        from privca.errors import UsageError

        chains = cas.chains_to_other_roots(ledger, cas.by_id(ledger, cert.issuer_id), now())
        if chain_for not in chains:
            raise UsageError(f"--chain-for {chain_for}: no valid cross-certificate leads from this certificate's root "
                             f"to {chain_for}; roots it reaches: {', '.join(chains) or 'none (no rollover)'}")
        sys.stdout.write(chains[chain_for])
        return
    if pem or fullchain or chain:
        from privca.rules.chain import file_content

        pems = cas.chain_pems(ledger, cas.by_id(ledger, cert.issuer_id))
        sys.stdout.write(file_content("fullchain" if fullchain else "chain" if chain else "cert", cert.pem, pems)
                         .decode())
        return
    renewals = certificates.successors(ledger, cert.serial)
    record = cert.to_json(now=now(), names=cas.names(ledger),
                          replaced_by=renewals[0].serial if renewals else None)
    if json_output:
        print_json(record)
        return
    for key, value in record.items():
        if isinstance(value, list):
            value = ", ".join(f"{item['type']}:{item['value']}" if isinstance(item, dict) else str(item)
                              for item in value)
        print(f"{key:20} {value}")
