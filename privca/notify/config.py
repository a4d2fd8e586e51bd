"""The notify configuration: ``notify.toml`` in the store.

    [notify]
    expiring_within_days = 30      # certificates and CAs due within this many days
    backup_max_age_hours = 48      # a backup older than this is a finding
    resend_after_hours = 24        # a finding already sent is not sent again within this

    [[channel]]
    name = "uc-team"               # shown in output and errors (never the URL: it holds the token)
    type = "webex"                 # webex, teams, slack, webhook or smtp
    url_file = "secrets/webex-url" # the incoming webhook URL, in an owner-only file (or url_env = "VARIABLE")

    [[channel]]
    name = "mail"
    type = "smtp"
    host = "smtp.example.com"
    port = 587                     # STARTTLS is required: credentials and findings never cross in clear text
    from = "pki@example.com"
    to = ["uc-admins@example.com"]
    username = "pki"               # optional
    password_file = "secrets/smtp-password"   # or password_env
    cafile = "/etc/ssl/certs/internal-ca.pem" # optional: the CA that signed the SMTP server's certificate

Secrets are handled as CA passphrases are: never written in the TOML itself, read from a file that only its owner
may read (or an environment variable), and never shown in output, errors or logs.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privca.errors import UsageError

CONFIG_FILE = "notify.toml"
CHANNEL_TYPES = ("webex", "teams", "slack", "webhook", "smtp")
SECRET_KEYS = ("url", "password")


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    settings: dict[str, Any] = field(repr=False)
    secret: str = field(repr=False, default="")  # the webhook URL or the SMTP password

    def describe(self) -> str:
        """How the channel is named in output: never the secret URL."""
        if self.type == "smtp":
            return f"{self.name} (smtp {self.settings['host']}:{self.settings.get('port', 587)})"
        return f"{self.name} ({self.type})"


@dataclass(frozen=True)
class NotifyConfig:
    expiring_within_days: int
    backup_max_age_hours: float
    resend_after_hours: float
    channels: list[Channel]


def load_config(path: Path, base: Path) -> NotifyConfig:
    """Read ``path``; relative secret files are taken from ``base`` (the store).

    Raises:
        UsageError: the file is missing or invalid, or a secret is written in it or readable by others.
    """
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no notify configuration; write one (see docs/operations.md)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    general = data.get("notify", {})
    unknown = set(data) - {"notify", "channel"}
    if unknown:
        raise UsageError(f"{path}: unknown section {sorted(unknown)[0]!r}; use [notify] and [[channel]]")
    within = _number(path, general, "expiring_within_days", 30, 0, 3650, int)
    backup_age = _number(path, general, "backup_max_age_hours", 48, 1, 24 * 365, float)
    resend = _number(path, general, "resend_after_hours", 24, 0, 24 * 365, float)
    channels = [_channel(path, base, index, item) for index, item in enumerate(data.get("channel", []))]
    if not channels:
        raise UsageError(f"{path}: no [[channel]]; add one (webex, teams, slack, webhook or smtp)")
    names = [channel.name for channel in channels]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: two channels share a name; give each its own")
    return NotifyConfig(within, backup_age, resend, channels)


def _number(path: Path, table: dict[str, Any], key: str, default: float, low: float, high: float, kind: type) -> Any:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UsageError(f"{path}: [notify] {key} = {value!r}; give a number from {low:g} to {high:g}")
    return kind(value)


def _channel(path: Path, base: Path, index: int, item: dict[str, Any]) -> Channel:
    where = f"{path}: [[channel]] #{index + 1}"
    kind = item.get("type")
    if kind not in CHANNEL_TYPES:
        raise UsageError(f"{where}: type = {kind!r}; choose one of {', '.join(CHANNEL_TYPES)}")
    name = str(item.get("name") or kind)
    for key in SECRET_KEYS:
        if key in item:
            raise UsageError(f"{where} ({name}): {key} is a secret and is not kept in this file; "
                             f"put it in an owner-only file and name it with {key}_file (or {key}_env)")
    if kind == "smtp":
        for key in ("host", "from", "to"):
            if not item.get(key):
                raise UsageError(f"{where} ({name}): needs {key}")
        if not isinstance(item["to"], list) or not all(isinstance(to, str) for to in item["to"]):
            raise UsageError(f"{where} ({name}): to must be a list of addresses")
        secret = _secret(where, name, base, item, "password") if item.get("username") else ""
    else:
        secret = _secret(where, name, base, item, "url")
        if not secret.startswith(("https://", "http://")):
            raise UsageError(f"{where} ({name}): the URL in its url_file/url_env is not an http(s) URL")
    return Channel(name, kind, dict(item), secret)


def _secret(where: str, name: str, base: Path, item: dict[str, Any], key: str) -> str:
    if f"{key}_env" in item:
        value = os.environ.get(str(item[f"{key}_env"]), "")
        if not value:
            raise UsageError(f"{where} ({name}): the environment variable {item[key + '_env']} is not set")
        return value.strip()
    if f"{key}_file" not in item:
        raise UsageError(f"{where} ({name}): needs {key}_file (an owner-only file) or {key}_env")
    secret_path = base / str(item[f"{key}_file"])
    try:
        info = os.stat(secret_path)
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise UsageError(f"{secret_path}: readable by others; a secret must be owner-only (chmod 600)")
        value = secret_path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"{secret_path}: cannot read the {key} of channel {name} ({exc.strerror})") from None
    if not value:
        raise UsageError(f"{secret_path}: empty; it must hold the {key} of channel {name}")
    return value
