"""Trust bundles: the CA certificates each peer must trust, in the form that peer takes, with instructions.

    >>> from privca.exporters import export
    >>> result = export(Store("store"), "cucm", Path("bundles/cucm"), now=datetime.now(timezone.utc))

The same ledger always gives the same bytes: files carry no timestamps and list CAs in a fixed order.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privca.errors import UsageError
from privca.exporters.context import TrustContext, TrustedCA, build_context, trust_context
from privca.exporters.peers import ALL, PEERS, Peer, peer_names
from privca.exporters.writer import MARKER, write_folder

if TYPE_CHECKING:
    from privca.ledger.store import Store

__all__ = ["ALL", "PEERS", "Peer", "TrustContext", "TrustedCA", "build_context", "bundle_files", "export",
           "peer_names", "resolve_peers", "trust_context"]


def resolve_peers(name: str) -> list[Peer]:
    """The peers ``name`` stands for: one peer, or every peer for ``all``."""
    if name == ALL:
        return list(PEERS.values())
    if name not in PEERS:
        raise UsageError(f"export {name!r}: unknown peer; choose one of {', '.join(PEERS)}, or {ALL}")
    return [PEERS[name]]


def _marker(peer: str) -> str:
    return f"privca trust bundle: {peer}\n"


def bundle_files(ctx: TrustContext, name: str) -> dict[str, bytes]:
    """Every file of the export ``name`` (a peer or ``all``), by relative path, without writing anything."""
    from privca.exporters.htmldoc import with_html

    peers = resolve_peers(name)
    if name != ALL:
        return with_html(peers[0].build(ctx, peers[0]))
    from privca.exporters.render import render

    files: dict[str, bytes] = {"README.md": render("all/README.md.j2", ctx=ctx, peers=peers)}
    for peer in peers:
        files[f"{peer.name}/{MARKER}"] = _marker(peer.name).encode()
        files.update({f"{peer.name}/{path}": data for path, data in peer.build(ctx, peer).items()})
    return with_html(files)


def with_zips(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    """``files`` plus ``privca-<peer>.zip`` for each peer: its folder's files, ready to send as one attachment."""
    from privca.exporters.ziparchive import zip_name, zipped

    if name != ALL:
        return {**files, zip_name(name): zipped(files, f"privca-{name}")}
    archives = {}
    for peer in resolve_peers(name):
        own = {path.split("/", 1)[1]: data for path, data in files.items()
               if path.startswith(f"{peer.name}/") and not path.endswith(MARKER)}
        archives[zip_name(peer.name)] = zipped(own, f"privca-{peer.name}")
    return {**files, **archives}


def export(store: "Store", name: str, out: Path, *, now: datetime, force: bool = False,
           zip_files: bool = False) -> dict[str, Any]:
    """Write the trust bundle for peer ``name`` (or every peer for ``all``) into folder ``out``; with
    ``zip_files`` also one ``privca-<peer>.zip`` per peer in ``out``.

    Nothing is written unless every check passes and every file is rendered; the folder then appears at once.
    Returns the ``privca export --json`` shape.
    """
    resolve_peers(name)
    ctx = trust_context(store, now)
    files = bundle_files(ctx, name)
    if zip_files:
        files = with_zips(files, name)
    write_folder(out, files, marker=_marker(name), force=force)
    folder = Path(os.path.abspath(out))  # JSON paths are absolute (docs/json.md)
    return {
        "peer": name,
        "folder": str(folder),
        "files": [{"path": str(folder / path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for path, data in sorted(files.items()) if not path.endswith(MARKER)],
        "cas": [ca.summary() for ca in ctx.cas],
    }
