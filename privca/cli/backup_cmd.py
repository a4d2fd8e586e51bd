"""privca backup / privca restore: an encrypted copy of the store, and a new store from one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import JsonOption, PassphraseFileOption, StoreOption, now, open_store, passphrase_source, print_json
from privca.common.names import escaped


def backup(
    archive: Annotated[Path, typer.Argument(help="The archive to write, e.g. privca-2026-11-29.pcabk.",
                                            show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace the archive if it exists.")] = False,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write an encrypted backup of the store: ledger, CA keys, profiles. Safe while others issue.

    The archive is encrypted with the CA passphrase (AES-256-GCM, scrypt), readable only by you (mode 0600);
    keep copies off this machine. Restore it with privca restore.

    Examples:

        privca backup /srv/backups/privca-$(date +%F).pcabk

        privca backup nightly.pcabk --force --passphrase-file /root/.privca-pass
    """
    from privca.maintenance.backup import backup_store

    target = open_store(store)
    summary = backup_store(target, archive, passphrase_source(passphrase_file), now=now(), force=force)
    if json_output:
        print_json(summary)
        return
    print(f"Backed up {summary['cas']} CAs, {summary['certificates']} certificates and {summary['events']} events "
          f"to {archive} ({summary['bytes']:,} bytes, owner-only)")
    print(f"SHA-256 {summary['sha256']}")


def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by privca backup.", show_default=False)],
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Restore a backup into a new store folder (missing or empty), check it, and only then put it in place.

    Never overwrites a store. The CA passphrase the backup was made with is needed. Certificate files that
    privca wrote elsewhere (next to CSRs, --out folders) are not part of a backup: privca show SERIAL --pem
    prints any certificate from the restored ledger.

    Examples:

        privca restore /srv/backups/privca-2026-11-29.pcabk --store /srv/privca/store

        privca verify --store /srv/privca/store
    """
    from privca.maintenance.backup import restore_store

    target = open_store(store)
    summary = restore_store(archive, target, passphrase_source(passphrase_file), now=now())
    if json_output:
        print_json(summary)
        return
    print(f"Restored {summary['cas']} CAs, {summary['certificates']} certificates and {summary['events']} events "
          f"into {summary['store']}; the restored store verifies")
    print(f"Events log head: {summary['events_head']}")
    if summary["profiles"]:
        # The store's own profiles decide what gets issued: the operator should see which ones came back.
        print(f"Store profiles restored: {', '.join(escaped(name) for name in summary['profiles'])}")
    print(f"Files restored: {len(summary['files'])} (privca show, privca profiles list and privca verify tell more)")
