"""privca list / privca show: what the ledger holds."""

from __future__ import annotations

import sys
from typing import Annotated, Any

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
    from privca.ledger.db import iso
    from privca.ledger.records import certificate_record

    ledger = open_store(store).require_ca()
    moment = now()
    names = {int(row["id"]): str(row["name"]) for row in ledger.cas()}
    stamp = iso(moment)

    def query(columns: tuple[str, ...] = ("*",)) -> Any:
        return ledger.query_certificates(now=moment, statuses=status or (), expiring_within_days=expiring_within,
                                         profile=profile, columns=columns)

    if json_output:
        print_json([certificate_record(row, now=moment, ca_names=names) for row in query()])
    elif csv_output:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["serial", "status", "profile", "subject", "sans", "issuer", "not_before", "not_after"])
        for row in query():
            record = certificate_record(row, now=moment, ca_names=names)
            writer.writerow([record["serial"], record["status"], record["profile"], record["subject"],
                             " ".join(record["sans"]), record["issuer"], record["not_before"], record["not_after"]])
    else:
        # Only the columns of the table: the ledger's listing index covers them, so no certificate row is read.
        rows = query(TABLE_COLUMNS)
        table("Certificates", ["serial", "status", "profile", "subject", "expires"],
              [[r["serial"], _status(r["status"], r["not_after"], stamp), r["profile"], r["subject"], r["not_after"]]
               for r in rows])


TABLE_COLUMNS = ("serial", "status", "profile", "subject", "not_after")


def _status(status: str, not_after: str, stamp: str) -> str:
    from privca.rules.validity import status_at

    return status_at(str(status), not_after, stamp)


def show(
    serial: Annotated[str, typer.Argument(help="Serial number in hex, as privca list shows it.", show_default=False)],
    pem: Annotated[bool, typer.Option("--pem", help="Print only the certificate PEM.")] = False,
    fullchain: Annotated[bool, typer.Option("--fullchain", help="Print the certificate followed by its issuing CA "
                                            "and root: the .fullchain.pem file, written again from the ledger.")]
    = False,
    chain: Annotated[bool, typer.Option("--chain", help="Print only its issuing CA and root: the .chain.pem file.")]
    = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one certificate from the ledger.

    Examples:

        privca show 3f2a...

        privca show 3f2a... --pem > expc.pem

        privca show 3f2a... --fullchain > expc.fullchain.pem
    """
    from privca.authority.ca import parse_serial
    from privca.ledger.records import certificate_record

    target = open_store(store)
    ledger = target.require_ca()
    row = ledger.certificate(parse_serial(serial))
    if pem or fullchain or chain:
        from privca.authority.ca import chain_rows

        from privca.rules.chain import file_content

        cas = (ca["pem"] for ca in chain_rows(target, ledger.ca(row["issuer_id"])))
        sys.stdout.write(file_content("fullchain" if fullchain else "chain" if chain else "cert", row["pem"], cas)
                         .decode())
        return
    names = {int(ca["id"]): str(ca["name"]) for ca in ledger.cas()}
    record = certificate_record(row, now=now(), ca_names=names)
    if json_output:
        print_json(record)
        return
    for key, value in record.items():
        print(f"{key:20} {', '.join(value) if isinstance(value, list) else value}")
