"""privca export: trust bundles for the peers that must trust the CA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import JsonOption, StoreOption, fingerprint_text, now, open_store, print_json, table

# Kept in step with privca.exporters.peers.PEERS by tests/test_export.py (this module must not import it: start-up).
PEER_HELP = "cucm, unity, cms, cube, expressway, pem, der, p7b, pkcs12, or all"


def export(
    peer: Annotated[str, typer.Argument(help=f"Who the bundle is for: {PEER_HELP}.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create for the bundle (for all: one subfolder "
                                      "per peer).", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace the folder of an earlier privca export.")] = False,
    zip_files: Annotated[bool, typer.Option("--zip", help="Also write privca-<peer>.zip for each peer, to send its "
                                            "administrator as one attachment.")] = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write the CA certificates a peer must trust, in the form it takes, with INSTRUCTIONS.md for its administrator.

    Every instruction file comes twice: INSTRUCTIONS.md (text) and INSTRUCTIONS.html (a page any browser opens,
    offline). With --zip, privca-<peer>.zip holds each peer's folder.

    Every CA generation still trusted (active or retired, not expired) is included, so bundles stay right
    during a CA rotation. The same ledger always gives the same files. The folder appears only when every file
    is written; an existing folder is replaced only with --force, and only if privca wrote it.

    Peers: cucm (Unified CM and IM and Presence), unity (Unity Connection), cms (Meeting Server), cube (IOS-XE),
    expressway, and the generic pem, der, p7b and pkcs12 (Java trust store).

    Examples:

        privca export cucm --out bundles/cucm

        privca export all --out bundles

        privca export expressway --out bundles/expressway --force --json

        privca export all --out bundles --zip
    """
    from privca.exporters import export as export_bundle

    target = open_store(store)
    result = export_bundle(target, peer, out, now=now(), force=force, zip_files=zip_files)
    if json_output:
        print_json(result)
        return
    table(f"privca trust bundle: {peer}", ["file", "bytes", "sha256"],
          [[str(Path(item["path"]).relative_to(result["folder"])), str(item["bytes"]), item["sha256"]]
           for item in result["files"]])
    print(f"Wrote {len(result['files'])} files to {out}")
    for ca in result["cas"]:
        kind = {"root": "root CA", "intermediate": "intermediate CA"}.get(ca["kind"], "cross-certificate")
        print(f"  {kind:17} {ca['subject']}  ({ca['status']}, until {ca['not_after']})")
        print(f"  {'':17} SHA-256 {fingerprint_text(ca['fingerprint_sha256'])}")
    guide = "README.html" if peer == "all" else "INSTRUCTIONS.html"
    print(f"Next: follow {out / guide}")
