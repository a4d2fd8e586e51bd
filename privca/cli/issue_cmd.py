"""privca issue: sign CSRs with a profile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets, note,
                     now, open_store, print_json, progress_bar, read_stdin, table, unlock_issuing_key_ahead)


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def issue(
    csrs: Annotated[list[Path], typer.Argument(help="CSR files (PEM or DER), e.g. from Expressway's Generate CSR; "
                                                    "- reads one from standard input (with --out; the files are "
                                                    "named after its CN).",
                                               show_default=False)],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Issuance profile; see: privca profiles")] = "expressway-c",
    days: Annotated[int | None, typer.Option("--days", help="Validity in days [default: the profile's]",
                                             show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the files here instead of next to each CSR.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace output files that already exist.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the CSRs and show what each would be granted; "
                                          "sign nothing, write nothing, ask for no passphrase.")] = False,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a certificate for each CSR: <name>.pem, <name>.chain.pem (CAs) and <name>.fullchain.pem.

    Every CSR is checked before any is signed; if one is bad, nothing is issued and every problem is listed.
    The CSR's requested extensions are requests: the profile decides what is granted.

    Examples:

        privca issue expc.csr

        privca issue exp-c1.csr exp-c2.csr --out certs/

        privca issue expc-client.csr --profile expressway-client --days 365

        privca issue expe.csr --profile expressway-e --dry-run

        privca issue - --out certs/ < expc.csr
    """
    target = open_store(store)
    stdin = read_stdin() if Path("-") in csrs else None
    if dry_run:
        _preview(target, csrs, profile, days, out, force, json_output, stdin)
        return
    secrets = ca_secrets(passphrase_file, pin_file, pkcs11_module)
    unlock_issuing_key_ahead(target, secrets, passphrase_file)
    from privca.authority.signer import issue as issue_certificates

    from privca.common.serials import serial_text
    from privca.ledger.records import iso

    with progress_bar(len(csrs), "Signing") as advance:
        issued = issue_certificates(target, csrs, secrets, now=now(), profile=profile, days=days, out_dir=out,
                                    force=force, progress=advance, stdin=stdin)
    if json_output:
        from privca.ledger.cas import names

        known = names(target.ledger)
        print_json([item.to_json(known) for item in issued], "certificates")
        return
    certs = [item.certificate for item in issued]
    if len(certs) > 3:
        table(f"Issued {len(certs)} certificates ({certs[0].profile})", ["serial", "subject", "expires", "file"],
              [[serial_text(c.serial), c.subject, iso(c.not_after), c.cert_path or ""] for c in certs])
    else:
        for item in issued:
            cert = item.certificate
            print(f"Issued {serial_text(cert.serial)}  {cert.subject}")
            print(f"  profile {cert.profile}: EKU {', '.join(cert.eku)}; SAN {', '.join(cert.sans)}")
            print(f"  valid {iso(cert.not_before)} to {iso(cert.not_after)}")
            print(f"  certificate {cert.cert_path}")
            print(f"  chain       {cert.chain_path}")
            print(f"  full chain  {cert.fullchain_path}")
            for root_name, path in item.chains_for_other_roots:
                print(f"  chain for peers that trust only {root_name}: {path}")
            for text in item.notes:
                print(f"  note: {text}")
    if certs:
        first = certs[0]
        # openssl's purpose for each EKU the profile grants: a client-only certificate fails -purpose sslserver.
        for eku, purpose in (("serverAuth", "sslserver"), ("clientAuth", "sslclient")):
            if eku in first.eku:
                note(f"Verify: openssl verify -purpose {purpose} -CAfile {first.chain_path} {first.cert_path}")


def _preview(target: object, csrs: list[Path], profile: str, days: int | None, out: Path | None, force: bool,
             json_output: bool, stdin: bytes | None) -> None:
    """What ``issue`` would grant each CSR, from the same checks and options as the real run, without the CA key."""
    from privca.authority.ca import active_issuing
    from privca.authority.signer import check_lifetimes, plan, validity_days

    issuing = active_issuing(target)  # type: ignore[arg-type]
    planned = plan(target, csrs, profile=profile, out_dir=out, force=force, stdin=stdin)  # type: ignore[arg-type]
    lifetimes = validity_days(planned, days)
    check_lifetimes(issuing, lifetimes, now())
    previews: list[dict[str, Any]] = [{
        # Absolute paths and typed SANs, as the issued certificate's JSON has them (docs/json.md).
        "csr": item.request.source if item.request.source.startswith("- ") else os.path.abspath(item.request.source),
        "profile": item.request.profile.name,
        "subject": item.request.subject.rfc4514_string(),
        "sans": [{"type": entry.kind, "value": entry.value} for entry in item.request.sans],
        "key_type": item.request.key_type,
        "requested_eku": item.request.requested_eku,
        "eku": list(item.request.profile.eku),
        "key_usage": list(item.request.profile.key_usage_for(item.request.key_algorithm)),
        "validity_days": lifetime,
        "issuer": issuing.name,
        "cert_path": os.path.abspath(item.cert_path) if item.cert_path is not None else None,
        "notes": item.request.notes,
    } for item, lifetime in zip(planned, lifetimes, strict=True)]
    if json_output:
        print_json(previews, "certificates")
        return
    for preview in previews:
        print(f"{preview['csr']}: would be issued by {preview['issuer']} under profile {preview['profile']}")
        print(f"  subject {preview['subject']}")
        print(f"  SAN {', '.join(san['value'] for san in preview['sans'])}; key {preview['key_type']}")
        print(f"  EKU asked {', '.join(preview['requested_eku']) or '-'}; granted {', '.join(preview['eku'])}")
        print(f"  key usage {', '.join(preview['key_usage'])}; {preview['validity_days']} days; to {preview['cert_path']}")
        for text in preview["notes"]:
            print(f"  note: {text}")
    note("Dry run: nothing signed or written. Run again without --dry-run to issue.")
