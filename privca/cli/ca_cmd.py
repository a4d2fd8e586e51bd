"""privca ca: settings of the CAs themselves."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOption, StoreOption, note, now, open_store, print_json, table

app = typer.Typer(help="Settings of the CAs (CRL and OCSP URLs).", no_args_is_help=True)


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
    from ..publish import set_urls

    changed = set_urls(open_store(store), now=now(), crl_base=crl_url, ocsp_url=ocsp_url, ca_name=ca)
    if json_output:
        print_json(changed)
        return
    if not changed:
        note("Nothing changed: the CAs already have these URLs")
        return
    table("CA URLs", ["CA", "CRL URL", "OCSP URL"], [[c["ca"], c["crl_url"] or "-", c["ocsp_url"] or "-"] for c in changed])
    note("Certificates issued before keep their old URLs; keep publishing there until they expire.")
