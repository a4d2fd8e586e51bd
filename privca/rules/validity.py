"""Validity rules: expired, not yet valid, and the expiring window; and "expired" for a ledger status."""

from __future__ import annotations

from datetime import datetime

from privca.rules.catalogue import Breach, rule

EXPIRING_DAYS = 30  # a month: time to get a CSR from the device, issue, and upload in a change window


def day(moment: datetime) -> str:
    """The date a message shows (``2026-03-01``); the time of day means nothing to a change board."""
    return moment.strftime("%Y-%m-%d")


def days_left(not_after: datetime, now: datetime) -> int:
    return (not_after - now).days


def is_expired(not_after: datetime, now: datetime) -> bool:
    return not_after < now


def status_at(status: str, not_after: str, stamp: str) -> str:
    """The status people see: a ``valid`` certificate whose notAfter (ISO text, as the ledger keeps it) is
    before ``stamp`` (ISO text of now) is ``expired``. ISO text in one format compares as the times do."""
    return "expired" if status == "valid" and not_after < stamp else status


def validity(not_before: datetime, not_after: datetime, now: datetime,
             window: int = EXPIRING_DAYS) -> Breach | None:
    """Expired, not yet valid, or expiring within ``window`` days (at most one of them)."""
    if is_expired(not_after, now):
        return Breach(rule("validity.expired"), f"expired on {day(not_after)}")
    if not_before > now:
        return Breach(rule("validity.not-yet-valid"), f"not valid before {day(not_before)}")
    left = days_left(not_after, now)
    if left <= window:
        return Breach(rule("validity.expiring"), f"expires in {left} days ({day(not_after)})")
    return None
