"""privca verify: check the store's integrity (and finish interrupted writes with --repair)."""

from __future__ import annotations

from typing import Annotated

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets,
                               fingerprint_text, note, open_store, print_json, progress_bar, table)

CHECK_NAMES = "cas, certificates, keys, crl, events, rows, seals, permissions, leftovers, files"


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def verify(
    repair: Annotated[bool, typer.Option("--repair", help="First finish or undo writes that a crash interrupted, and "
                                         "remove group/other access in the store; then check.")] = False,
    skip: Annotated[list[str] | None, typer.Option("--skip", help=f"Skip a check (repeatable): {CHECK_NAMES}. "
                                                   "'--skip keys' needs no passphrase.", show_default=False)] = None,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that the store is whole: exit 0 when it is, 13 with every problem listed when it is not.

    Checks that every certificate in the ledger parses, matches its serial, subject and fingerprint and is signed
    by its CA; that the CA keys open (key files with the passphrase, HSM keys with the token PIN) and match the CA
    certificates; that CRL numbers never go backwards; that
    the events log is an unbroken hash chain (an edited or deleted row is named); that every certificate, CA, CRL
    and enrollment row is what the last event touching it recorded (a row edited with sqlite3 is named, with its
    columns); that the seals (the log's head signed by a CA key) verify with the CA certificates alone, chain to a
    root whose fingerprint is printed, and cover the log; that the store is owner-only;
    that no interrupted write left files behind; and that the certificate files privca wrote still hold what the
    ledger says (a file that was moved away is shown as a note, not a problem).

    Examples:

        privca verify

        privca verify --repair          # after a crash or a kill

        privca verify --skip keys --json   # from cron, without the passphrase

        privca verify --pin-file /root/.privca-pin   # CA keys in an HSM: the PIN, no passphrase
    """
    from privca.errors import IntegrityError, KeyMaterialError
    from privca.maintenance.verify import certificate_count, secrets_needed, verify_store

    target = open_store(store)
    skipped = list(skip or [])
    secret = None
    if "keys" not in skipped:
        # Only the secrets the CA keys need (a store with every key in a token never asks for a passphrase),
        # asked for before the progress bar starts.
        secret = ca_secrets(passphrase_file, pin_file, pkcs11_module)
        try:
            for name in secrets_needed(target):
                if name == "pin":
                    secret.get_pin()
                else:
                    secret.get_passphrase()
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{exc.message}; or check everything but the keys with --skip keys") from None
    total = certificate_count(target) if "certificates" not in skipped else 0
    with progress_bar(total, "Verifying") as advance:
        report = verify_store(target, passphrase=secret, skip=skipped, repair=repair, progress=advance)
    if json_output:
        print_json(report.as_dict())
    else:
        from privca.common.names import printable

        for line in report.repaired:
            note(f"repaired: {line}")
        checked = ", ".join(f"{count} {what}" for what, count in report.checked.items())
        print(f"Checked {checked}" + (f" (skipped: {', '.join(report.skipped)})" if report.skipped else ""))
        print(f"Events log head: {report.events_head}  (note it somewhere else to detect a rewritten log)")
        if "seals" not in report.skipped:
            unsealed = f", {report.unsealed_events} after the last seal" if report.unsealed_events else ""
            print(f"Signed by the CA: events #1 to #{report.sealed_events}{unsealed}")
            for name, digest in report.seal_roots.items():
                print(f"Seals chain to {name}, SHA-256 {fingerprint_text(digest)}  (compare with the root your "
                      "peers trust)")
        if report.notes:
            table("Notes (not problems)", ["check", "what", "note"],
                  [[f.check, printable(f.subject, 200), printable(f.problem, 300)] for f in report.notes])
        if report.findings:
            table("Problems", ["check", "what", "problem"],
                  [[f.check, printable(f.subject, 200), printable(f.problem, 300)] for f in report.findings])
    if not report.ok:
        count = len(report.findings)
        raise IntegrityError(f"{target.path}: {count} problem{'s' if count != 1 else ''} found"
                             + ("" if repair else "; privca verify --repair fixes interrupted writes and permissions"))
    if not json_output:
        print("OK: the store is whole")
