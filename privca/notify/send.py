"""Sending findings: Webex, Microsoft Teams and Slack incoming webhooks, a generic JSON webhook, and SMTP.

Deduplication: ``notify-state.json`` in the store records when each finding was last sent on each channel; a
finding is sent again only after ``resend_after_hours``. A channel that fails keeps its findings unsent, so they
go out on the next run.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from privca.common.fsutil import atomic_write
from privca.ledger.records import iso, parse_time
from privca.notify.config import Channel, NotifyConfig
from privca.notify.findings import Finding

STATE_FILE = "notify-state.json"
TIMEOUT = 15.0  # seconds for each connection: a dead endpoint must not hold the timer for minutes


class SendError(Exception):
    """One channel failed; the message names the channel (never its secret URL) and the cause."""


def due_for(channel: Channel, findings: Sequence[Finding], state: dict[str, str], now: datetime,
            resend_after: timedelta) -> list[Finding]:
    """The findings not sent on ``channel`` within ``resend_after``."""
    due = []
    for finding in findings:
        last = state.get(f"{channel.name}|{finding.key}")
        if last is None or now - parse_time(last) >= resend_after:
            due.append(finding)
    return due


def read_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in data.items()} if isinstance(data, dict) else {}


def write_state(path: Path, state: dict[str, str]) -> None:
    atomic_write(path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode(), mode=0o600, overwrite=True)


def notify(config: NotifyConfig, findings: Sequence[Finding], state_path: Path, now: datetime, *,
           store_name: str, dry_run: bool = False) -> list[dict[str, Any]]:
    """Send what is due on every channel; returns one report per channel (``sent``, ``skipped``, ``error``)."""
    state = read_state(state_path)
    # Findings no longer present are forgotten, so one that comes back later is sent at once.
    keys = {finding.key for finding in findings}
    state = {key: value for key, value in state.items() if key.split("|", 1)[-1] in keys}
    report = []
    for channel in config.channels:
        due = due_for(channel, findings, state, now, timedelta(hours=config.resend_after_hours))
        item: dict[str, Any] = {"channel": channel.describe(), "sent": [f.key for f in due],
                                "skipped": len(findings) - len(due), "error": None}
        if due and not dry_run:
            try:
                send(channel, due, now, store_name)
            except SendError as exc:
                item["error"], item["sent"] = str(exc), []
            else:
                for finding in due:
                    state[f"{channel.name}|{finding.key}"] = iso(now)
        report.append(item)
    if not dry_run:
        write_state(state_path, state)
    return report


def send(channel: Channel, findings: Sequence[Finding], now: datetime, store_name: str) -> None:
    title = f"privca: {len(findings)} item{'s' if len(findings) != 1 else ''} need attention ({store_name})"
    lines = [f"{'CRITICAL' if f.severity == 'critical' else 'warning'}: {f.summary}"
             + (f" -> {f.command}" if f.command else "") for f in findings]
    if channel.type == "smtp":
        _smtp(channel, title, "\n".join(lines) + "\n")
        return
    if channel.type == "webex":
        # Webex incoming webhooks take {"markdown": ...} (or "text").
        body: dict[str, Any] = {"markdown": f"**{title}**\n\n" + "\n".join(f"- {line}" for line in lines)}
    elif channel.type == "slack":
        body = {"text": f"*{title}*\n" + "\n".join(f"• {line}" for line in lines)}
    elif channel.type == "teams":
        # Teams workflow webhooks take an Adaptive Card in a message attachment.
        body = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4", "$schema":
                        "http://adaptivecards.io/schemas/adaptive-card.json",
                        "body": [{"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True}]
                        + [{"type": "TextBlock", "text": line, "wrap": True} for line in lines]}}]}
    else:
        body = {"source": "privca", "store": store_name, "generated_at": iso(now),
                "findings": [finding.to_json() for finding in findings]}
    _post(channel, body)


def _post(channel: Channel, body: dict[str, Any]) -> None:
    request = urllib.request.Request(channel.secret, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "privca-notify"})
    context = ssl.create_default_context(cafile=channel.settings.get("cafile"))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as reply:
            reply.read(65536)
    except urllib.error.HTTPError as exc:
        raise SendError(f"{channel.describe()}: the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError(f"{channel.describe()}: cannot reach the webhook ({reason})") from None


def _smtp(channel: Channel, subject: str, text: str) -> None:
    settings = channel.settings
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, settings["from"], ", ".join(settings["to"])
    message.set_content(text)
    context = ssl.create_default_context(cafile=settings.get("cafile"))
    try:
        with smtplib.SMTP(settings["host"], int(settings.get("port", 587)), timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            # STARTTLS is not optional: an SMTP server that does not offer it gets nothing, not clear text.
            if not smtp.has_extn("starttls"):
                raise SendError(f"{channel.describe()}: the server does not offer STARTTLS; nothing was sent")
            smtp.starttls(context=context)
            smtp.ehlo()
            if settings.get("username"):
                smtp.login(settings["username"], channel.secret)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise SendError(f"{channel.describe()}: the server refused the user name or password") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(f"{channel.describe()}: {type(exc).__name__}: {exc}") from None
