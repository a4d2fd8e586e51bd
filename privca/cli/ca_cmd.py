"""privca ca: settings of the CAs themselves."""

from __future__ import annotations

from typing import Annotated

import typer

from privca.cli.common import JsonOption, StoreOption, note, now, open_store, print_json, table

app = typer.Typer(help="""The CAs themselves: list and show every generation, and set their CRL and OCSP URLs.

    Examples:

        privca ca list

        privca ca show issuing-1 --pem > issuing-1.pem

        privca ca set-url --crl-url http://pki.example.com/crl --ocsp-url http://pki.example.com/ocsp
    """, no_args_is_help=True)



@app.command("list")
def list_cas(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """List every CA generation in the store: roots and issuing CAs, active, retired or revoked.

    The serial is what privca revoke --ca takes; the fingerprint is what peers show after you load the CA.

    Examples:

        privca ca list

        privca ca list --json
    """
    from privca.ledger.cas import all_cas

    found = all_cas(open_store(store).require_ca())
    names = {ca.id: ca.name for ca in found}
    records = [ca.to_json(names) for ca in found]
    if json_output:
        print_json(records, "cas")
        return
    table("Certificate authorities", ["name", "status", "subject", "serial", "key", "expires", "signed by"],
          [[str(r["name"]), str(r["status"]), str(r["subject"]), str(r["serial"]), str(r["key_type"]),
            str(r["not_after"]), str(r["parent"] or "-")] for r in records],
          drop_first=("key", "signed by", "serial"))


@app.command("show")
def show_ca(
    name: Annotated[str, typer.Argument(help="The CA's name, as privca ca list shows it (root-1, issuing-2, ...).",
                                        show_default=False)],
    pem: Annotated[bool, typer.Option("--pem", help="Print only the CA certificate in PEM.")] = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one CA: its names, validity, fingerprints, URLs and place in the hierarchy.

    Examples:

        privca ca show issuing-1

        privca ca show root-1 --pem > root-1.pem
    """
    from privca.errors import LedgerError

    from privca.ledger.cas import all_cas

    every = all_cas(open_store(store).require_ca())
    names = {ca.id: ca.name for ca in every}
    found = [ca for ca in every if ca.name == name]
    if not found:
        raise LedgerError(f"CA {name!r}: not in this store; see: privca ca list ({', '.join(names.values())})")
    if pem:
        print(found[0].pem, end="")
        return
    record = found[0].to_json(names)
    if json_output:
        print_json(record)
        return
    for key, value in record.items():
        print(f"{key:20} {value if value is not None else '-'}")


@app.command("set-url")
def set_url(
    crl_url: Annotated[str | None, typer.Option("--crl-url", help="Base URL for CRLs, e.g. http://pki.example.com/crl; "
                                                "each CA's CRL is <base>/<ca>.crl. 'none' removes it.",
                                                show_default=False)] = None,
    ocsp_url: Annotated[str | None, typer.Option("--ocsp-url", help="OCSP responder URL for the issuing CA's "
                                                 "certificates, e.g. http://pki.example.com/ocsp. 'none' removes it.",
                                                 show_default=False)] = None,
    ca: Annotated[str | None, typer.Option("--ca", help="Change only this CA (e.g. issuing-1, root-1).",
                                           show_default=False)] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set the CRL and OCSP URLs that certificates issued from now on will carry.

    Certificates already issued keep the URLs they were issued with: keep publishing at the old URLs until
    those certificates have expired or been replaced.

    Examples:

        privca ca set-url --crl-url http://pki.example.com/crl --ocsp-url http://pki.example.com/ocsp

        privca ca set-url --ocsp-url none
    """
    from privca.revocation.publish import set_urls

    changed = set_urls(open_store(store), now=now(), crl_base=crl_url, ocsp_url=ocsp_url, ca_name=ca)
    if json_output:
        print_json(changed, "cas")
        return
    if not changed:
        note("Nothing changed: the CAs already have these URLs")
        return
    table("CA URLs", ["CA", "CRL URL", "OCSP URL"], [[c["ca"], c["crl_url"] or "-", c["ocsp_url"] or "-"] for c in changed])
    note("Certificates issued before keep their old URLs; keep publishing there until they expire.")
