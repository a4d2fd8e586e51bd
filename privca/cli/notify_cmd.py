"""privca notify: alerts for what is due."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import JsonOption, StoreOption, note, now, open_store, print_json


def notify(
    config: Annotated[Path | None, typer.Option("--config", help="The notify configuration [default: notify.toml "
                                                 "in the store]", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; send nothing, record nothing.")]
    = False,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send what needs attention to Webex, Teams, Slack, a webhook or email; nothing is sent twice within its interval.

    Findings: certificates to renew and CAs to rotate within expiring_within_days, CRLs due, stale or missing,
    and a last backup older than backup_max_age_hours. A finding already sent on a channel is sent there again
    only after resend_after_hours. Exit 0 when every channel took its messages, 1 when one failed (its findings
    are sent on the next run). The channels are set in notify.toml in the store (docs/operations.md); webhook
    URLs and passwords live in owner-only files, never in the TOML, on the command line or in output.

    Examples:

        privca notify --dry-run

        privca notify
    """
    from datetime import timedelta

    from privca.notify.config import CONFIG_FILE, load_config
    from privca.notify.findings import find
    from privca.notify.send import STATE_FILE
    from privca.notify.send import notify as send_all

    target = open_store(store)
    target.require_ca()
    settings = load_config(config or target.path / CONFIG_FILE, target.path)
    moment = now()
    findings = find(target, moment, within_days=settings.expiring_within_days,
                    backup_max_age=timedelta(hours=settings.backup_max_age_hours))
    report = send_all(settings, findings, target.path / STATE_FILE, moment, store_name=str(target.path.resolve()),
                      dry_run=dry_run)
    if json_output:
        print_json({"findings": [finding.to_json() for finding in findings], "channels": report})
    else:
        if not findings:
            print("Nothing needs attention.")
        for finding in findings:
            print(f"{finding.severity:8} {finding.summary}")
        for item in report:
            verb = "would send" if dry_run else "sent"
            if item["error"]:
                note(f"{item['channel']}: FAILED: {item['error']}")
            else:
                note(f"{item['channel']}: {verb} {len(item['sent'])}, {item['skipped']} already sent recently")
    if any(item["error"] for item in report):
        raise typer.Exit(1)
