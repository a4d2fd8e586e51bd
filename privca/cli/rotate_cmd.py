"""privca renew / privca rotate intermediate|root / privca plan: renewal and CA rotation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from privca.errors import UsageError
from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets,
                     fingerprint_text, note, now, open_store, print_json, progress_bar, san_text, sign_first_crls,
                     table)

if TYPE_CHECKING:
    from privca.authority.rotation import Rotation
    from privca.keys.keystore import CASecrets
    from privca.ledger.store import Store

app = typer.Typer(help="""Rotate a CA generation: a new issuing CA, or a root rollover with cross-certificates.

    Examples:

        privca plan

        privca rotate intermediate --issuing-cn "Example UC Issuing CA 2"

        privca rotate root --root-cn "Example UC Root CA 2" --issuing-cn "Example UC Issuing CA 3"
    """, no_args_is_help=True)

KeyTypeOption = Annotated[
    str | None,
    typer.Option("--key-type", help="rsa:3072, rsa:4096, ec:secp256r1 or ec:secp384r1 (default: as the CA it "
                 "replaces)", show_default=False),
]


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def renew(
    serial: Annotated[str | None, typer.Argument(help="Serial of the certificate to renew, in hex as privca list "
                                                 "or OpenSSL shows it, or its first 8 or more digits.", show_default=False)] = None,
    csr: Annotated[Path | None, typer.Option("--csr", help="A new CSR from the device (recommended: a new key). Its "
                                             "names must be those of the certificate.", show_default=False)] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Issue under this profile instead of the "
                                                "certificate's own.", show_default=False)] = None,
    expiring_within: Annotated[int | None, typer.Option("--expiring-within", help="Renew every certificate that "
                                                        "expires within this many days, with the key on record.",
                                                        show_default=False)] = None,
    revoke_old: Annotated[bool, typer.Option("--revoke-old", help="Revoke the old certificate (reason superseded); "
                                             "by default it stays valid until it expires.")] = False,
    days: Annotated[int | None, typer.Option("--days", help="Validity in days (default: the profile's)",
                                             show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the files here (default: next to the new "
                                             "CSR, else next to the old certificate)", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace output files that already exist.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --expiring-within: only list what would be "
                                          "renewed and what needs a new CSR.")] = False,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Renew a certificate: same names and profile, new serial, linked to the old one in the ledger.

    With --csr the device's new key is certified (recommended). Without it, the key on record is certified again:
    the CSR the certificate was issued from, else the certificate's own public key. The device must still hold
    that key. Files are named after the old ones plus the date, e.g. expc-20271101.pem.

    Examples:

        privca renew 3f2a9c0d --csr expc-2027.csr

        privca renew 3f2a9c0d --revoke-old

        privca renew --expiring-within 30 --dry-run

        privca renew --expiring-within 30 --out renewed/
    """
    if (serial is None) == (expiring_within is None):
        raise UsageError("renew: name one SERIAL, or use --expiring-within DAYS (not both)")
    if expiring_within is not None and (csr is not None or profile is not None):
        raise UsageError("--csr and --profile: only with one SERIAL, not with --expiring-within")
    if dry_run and expiring_within is None:
        raise UsageError("--dry-run: only with --expiring-within")
    target = open_store(store)
    moment = now()
    secret = ca_secrets(passphrase_file, pin_file, pkcs11_module)  # asked only when something is signed
    if serial is not None:
        from privca.lifecycle.renewal import renew as renew_one

        record = renew_one(target, serial, secret, now=moment, csr_path=csr, profile=profile, days=days, out_dir=out,
                           revoke_old=revoke_old, force=force)
        if json_output:
            print_json(record)
        else:
            _print_renewed([record])
        return
    from privca.lifecycle.renewal import renew_candidates, renewal_candidates

    assert expiring_within is not None
    candidates = renewal_candidates(target, moment, expiring_within)
    with progress_bar(0 if dry_run else sum(1 for c in candidates if c.request), "Renewing") as advance:
        result = renew_candidates(target, candidates, secret, now=moment, days=days, out_dir=out,
                                  revoke_old=revoke_old, force=force, dry_run=dry_run, progress=advance)
    if json_output:
        print_json(result)
        return
    if not result["renewed"] and not result["needs_csr"]:
        print(f"Nothing to renew: no certificate expires within {expiring_within} days without a renewal.")
        return
    if dry_run:
        table(f"Would renew ({len(result['renewed'])})", ["serial", "subject", "profile", "expires", "key"],
              [[r["serial"], r["subject"], r["profile"], r["not_after"], r["key_source"]] for r in result["renewed"]])
    else:
        _print_renewed(result["renewed"])
    if result["needs_csr"]:
        note(f"{len(result['needs_csr'])} certificate(s) need a new CSR from the device; then run: "
             "privca renew SERIAL --csr NEW.csr")
        table("Needs a new CSR", ["serial", "subject", "expires", "why"],
              [[r["serial"], r["subject"], r["not_after"], "; ".join(r["problems"])] for r in result["needs_csr"]])


def _print_renewed(records: list[dict[str, Any]]) -> None:
    for record in records[:20]:
        print(f"Renewed {record['replaces']} -> {record['serial']}  {record['subject']}")
        print(f"  profile {record['profile']}; key from {record['key_source']}; SAN {san_text(record['sans'])}")
        print(f"  valid {record['not_before']} to {record['not_after']}")
        print(f"  certificate {record['cert_path']}")
        print(f"  chain       {record['chain_path']}")
        print(f"  full chain  {record['fullchain_path']}")
        old = ("revoked (superseded); publish the CRL" if record["old_status"] == "revoked"
               else "still valid until it expires")
        print(f"  old certificate {record['replaces']}: {old}")
        for text in record["notes"]:
            print(f"  note: {text}")
    if len(records) > 20:
        print(f"... and {len(records) - 20} more; privca list shows them all")


@app.command("intermediate")
def rotate_intermediate(
    issuing_cn: Annotated[str | None, typer.Option("--issuing-cn", help="Common name of the new issuing CA; must "
                                                   "differ from every earlier CA (default: the old name with the "
                                                   "next generation number)", show_default=False)] = None,
    key_type: KeyTypeOption = None,
    days: Annotated[int | None, typer.Option("--days", help="Validity in days (default: 3652, cut to the root's "
                                             "end)", show_default=False)] = None,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a new issuing CA under the root (new key, new name) and issue from it from now on.

    The old issuing CA is retired: it stays trusted and keeps publishing its CRL until its last certificate
    expires. Load the new CA into every peer's trust store before installing a certificate it signed.

    Example:

        privca rotate intermediate --issuing-cn "Example UC Issuing CA 2"
    """
    from privca.authority.rotation import rotate_intermediate as rotate

    target, secrets, moment = open_store(store), ca_secrets(passphrase_file, pin_file, pkcs11_module), now()
    result = rotate(target, secrets, now=moment, issuing_cn=issuing_cn, key_type=key_type, days=days)
    _report(target, secrets, moment, result, json_output)


@app.command("root")
def rotate_root(
    root_cn: Annotated[str | None, typer.Option("--root-cn", help="Common name of the new root (default: the old "
                                                "name with the next generation number)", show_default=False)] = None,
    issuing_cn: Annotated[str | None, typer.Option("--issuing-cn", help="Common name of the new issuing CA under "
                                                   "it (default: derived the same way)", show_default=False)] = None,
    key_type: KeyTypeOption = None,
    root_days: Annotated[int, typer.Option("--root-days", help="New root validity in days.")] = 7305,
    issuing_days: Annotated[int, typer.Option("--issuing-days", help="New issuing CA validity in days.")] = 3652,
    cross_days: Annotated[int | None, typer.Option("--cross-days", help="Cross-certificate validity in days "
                                                   "(default: until the old root expires)", show_default=False)] = None,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    json_output: JsonOption = False,
) -> None:
    """Roll the root over: a new root and issuing CA, and cross-certificates between old and new root.

    The old root signs the new root (peers that trust only the old root validate the new hierarchy) and the new
    root signs the old root (peers that trust only the new root validate the old one). The old root and issuing
    CA are retired and stay trusted until their last certificate expires.

    Example:

        privca rotate root --root-cn "Example UC Root CA 2" --issuing-cn "Example UC Issuing CA 3"
    """
    from privca.authority.rotation import rotate_root as rotate
    from privca.authority.rotation import write_rollover_chains

    target, secrets, moment = open_store(store), ca_secrets(passphrase_file, pin_file, pkcs11_module), now()
    result = rotate(target, secrets, now=moment, root_cn=root_cn, issuing_cn=issuing_cn, key_type=key_type,
                    root_days=root_days, issuing_days=issuing_days, cross_days=cross_days)
    # The certificates already in service get a chain for the peers that move to the new root first.
    written = write_rollover_chains(target, moment)
    if written and not json_output and result.root is not None:
        note(f"Wrote {len(written)} chains for peers that trust only {result.root.name}, beside the certificates' "
             f"chain files (*.chain-{result.root.name}.pem)")
    _report(target, secrets, moment, result, json_output, {"rollover_chains": written})


def _report(target: "Store", secrets: "CASecrets", moment: datetime, result: "Rotation", json_output: bool,
            extra: dict[str, object] | None = None) -> None:
    """After a rotation: sign the new CAs' first CRLs with the keys already unlocked, then say what changed."""
    from privca.ledger.records import iso

    sign_first_crls(target, secrets, moment)
    if json_output:
        print_json({**result.to_json(), **(extra or {})})
        return
    new = [("New root", result.root)] if result.root is not None else []
    for label, ca in new + [("New issuing CA", result.issuing)]:
        print(f"{label}: {ca.subject}  ({ca.name}, key {ca.key_type}, expires {iso(ca.not_after)})")
        print(f"         SHA-256 {fingerprint_text(ca.fingerprint_sha256)}")
    for cross in result.cross_certificates:
        print(f"Cross-certificate {cross.subject} signed by {cross.issuer} (until {iso(cross.not_after)})")
        print(f"         SHA-256 {fingerprint_text(cross.fingerprint_sha256)}")
    for name in result.retired:
        print(f"Retired {name}: no longer issuing; peers keep trusting it while certificates it signed are in service")
    print("CRLs signed for every CA; publish them: privca publish DIR")
    print("Next: load the new CAs into every peer (privca export ...), then renew certificates (privca plan).")


def plan(
    within: Annotated[int, typer.Option("--within", help="List certificates that expire within this many days.")] = 90,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show what expires when, what to renew or rotate by when, and which trust bundles go to which peers.

    Read-only. Dates are when the step must be done by (or, for removing a retired CA, after which it may be).

    Examples:

        privca plan

        privca plan --within 365 --json
    """
    from privca.lifecycle.plan import rotation_plan

    result = rotation_plan(open_store(store), now(), horizon_days=within, )
    if json_output:
        print_json(result)
        return
    table("To do", ["when", "date", "what", "command"],
          [["OVERDUE" if action["overdue"] else {"deadline": "by", "not_before": "after"}.get(action["when"], ""),
            action["due"] or "first", action["what"],
            action["command"] or ""]
           for action in result["actions"]])
    table("CA generations", ["name", "status", "subject", "expires", "needed until"],
          [[ca["name"], ca["status"], ca["subject"], ca["not_after"], ca["needed_until"] or "-"]
           for ca in result["cas"]])
    table("Trust bundles", ["peer", "must hold", "new", "deliver by", "bundle"],
          [[bundle["peer"], ", ".join(bundle["cas"]), ", ".join(bundle["new"]) or "-",
            bundle["deliver_by"] or ("before first use" if bundle["new"] else "-"), bundle["bundle"]]
           for bundle in result["trust"]])
