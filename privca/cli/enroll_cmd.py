"""privca enroll: the SCEP RA, one-time challenge passwords, and the approval queue for automatic enrollment."""

from __future__ import annotations

from typing import Annotated

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption,
                               ca_secrets, note, now, open_store, print_json, table)

app = typer.Typer(help="Automatic enrollment (SCEP, EST): the RA, one-time challenge passwords, the approval queue.",
                  no_args_is_help=True)


@app.command("ra")
def make_ra(
    common_name: Annotated[str, typer.Option("--cn", help="Common name of the RA certificate.")] = "privca SCEP RA",
    key_size: Annotated[int, typer.Option("--key-size", help="RSA key size: 2048 or 3072.")] = 2048,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the SCEP RA: an RSA key and certificate that decrypt and sign SCEP messages instead of the CA key.

    Devices receive the RA certificate with the CA chain (GetCACert). Run it again to replace the RA (after an
    intermediate rotation, or before the RA certificate expires); restart privca serve afterwards.

    Examples:

        privca enroll ra

        privca enroll ra --cn "Example SCEP RA" --key-size 3072
    """
    from privca.enrollment.ra import create_ra

    record = create_ra(open_store(store), ca_secrets(passphrase_file, pin_file, pkcs11_module), now=now(),
                       common_name=common_name, key_size=key_size)
    if json_output:
        print_json(record)
        return
    print(f"SCEP RA {record['serial']}  {record['subject']}")
    print(f"  valid {record['not_before']} to {record['not_after']}")
    print(f"  key   {record['key_path']} (encrypted with the CA passphrase)")


@app.command("challenge")
def challenge(
    profile: Annotated[str, typer.Option("--profile", "-p", help="The profile the password enrolls under.")],
    names: Annotated[str | None, typer.Option(
        "--names", help="Comma-separated DNS names or IP addresses the certificate may carry; they become its SANs "
        "when the device's CSR has none.", show_default=False)] = None,
    expires: Annotated[str, typer.Option("--expires", help="How long the password is good for: 30m, 24h, 7d "
                                         "(at most 30d).")] = "24h",
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a one-time challenge password for one enrollment; it is printed once and stored only hashed.

    Give it to the device: IOS-XE `password` in the trustpoint (SCEP), or the HTTP Basic password (EST).

    Examples:

        privca enroll challenge --profile cube --names cube1.example.com,192.0.2.10

        privca enroll challenge --profile cube --expires 2h
    """
    from privca.enrollment.challenges import create_challenge, parse_duration

    lifetime = parse_duration(expires)
    wanted = [name for name in (names or "").split(",") if name.strip()]
    made = create_challenge(open_store(store), profile, wanted, lifetime, now())
    if json_output:
        print_json({"id": made.id, "password": made.password, "profile": made.profile, "names": made.names,
                    "expires_at": made.expires_at})
        return
    print(made.password)
    bound = f", bound to {', '.join(made.names)}" if made.names else ""
    note(f"Challenge #{made.id} for profile {made.profile}{bound}; single use, expires {made.expires_at}. "
         "It is not stored and cannot be shown again.")


@app.command("pending")
def pending(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """List the enrollment requests waiting for an operator (sent without a challenge password).

    Examples:

        privca enroll pending
    """
    from privca.ledger.enrollment import requests_with_status

    requests = requests_with_status(open_store(store).require_ca(), "pending")
    if json_output:
        print_json([request.to_json() for request in requests], "requests")
        return
    if not requests:
        note("No enrollment request is waiting.")
        return
    table("Waiting for approval", ["id", "received", "channel", "profile", "subject", "SANs"],
          [[str(r.id), r.received_at, r.channel, r.profile, r.subject, ", ".join(r.sans) or "-"] for r in requests])


@app.command("approve")
def approve(
    request_id: Annotated[int, typer.Argument(help="The request's id, as privca enroll pending shows it.",
                                              show_default=False)],
    names: Annotated[str | None, typer.Option(
        "--names", help="Comma-separated SANs to grant when the CSR has none (clients that cannot add SANs).",
        show_default=False)] = None,
    store: StoreOption = None,
) -> None:
    """Approve a waiting request: the device receives its certificate the next time it polls.

    The request is checked against its profile now; a request the profile would refuse is not approved.

    Examples:

        privca enroll approve 3

        privca enroll approve 4 --names cube2.example.com
    """
    from privca.enrollment.queue import decide

    wanted = [name for name in (names or "").split(",") if name.strip()]
    decided = decide(open_store(store), request_id, approve=True, names=wanted, now=now())
    print(f"Approved request #{decided.id} ({decided.subject}); the device gets its certificate on its next poll")


@app.command("reject")
def reject(
    request_id: Annotated[int, typer.Argument(help="The request's id, as privca enroll pending shows it.",
                                              show_default=False)],
    store: StoreOption = None,
) -> None:
    """Reject a waiting request: the device's next poll is answered with a failure.

    Examples:

        privca enroll reject 3
    """
    from privca.enrollment.queue import decide

    decided = decide(open_store(store), request_id, approve=False, names=[], now=now())
    print(f"Rejected request #{decided.id} ({decided.subject})")
