"""One-time challenge passwords: who may enroll a certificate under a profile, once, before a deadline.

The password is shown once and stored as its SHA-256 only. It is 24 characters of base32 (120 random bits), so
a fast hash is enough: nobody can search that space. IOS-XE sends it as the CSR's challengePassword attribute
(`password` in the trustpoint); EST clients send it as the HTTP Basic password.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from privca.common.names import dns_name_problem, ip_problem, printable
from privca.errors import UsageError
from privca.ledger import events
from privca.ledger.records import iso
from privca.ledger.enrollment import Challenge, add_challenge, challenge_by_hash
from privca.ledger.store import Store

_DURATION = re.compile(r"^(\d+)([mhd])$")
MAX_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class NewChallenge:
    password: str  # shown once, never stored
    id: int
    profile: str
    names: list[str]
    expires_at: str


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h`` or ``7d``; at most 30 days, because an unused password is a standing invitation."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"--expires {text!r}: give minutes, hours or days, e.g. 30m, 24h or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    lifetime = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
    if not timedelta(minutes=1) <= lifetime <= MAX_LIFETIME:
        raise UsageError(f"--expires {text}: must be between 1m and 30d")
    return lifetime


def password_hash(password: str) -> str:
    return hashlib.sha256(password.strip().encode()).hexdigest()


def check_names(names: list[str]) -> list[str]:
    """The names a challenge is bound to, each a DNS name or an IP address, lower-cased."""
    cleaned = []
    for name in names:
        value = name.strip().lower()
        if not value:
            continue
        if dns_name_problem(value) is not None and ip_problem(value) is not None:
            raise UsageError(f"--names {printable(name)}: not a DNS name or IP address "
                             f"({dns_name_problem(value)})")
        cleaned.append(value)
    return cleaned


def create_challenge(store: Store, profile: str, names: list[str], lifetime: timedelta, now: datetime) -> NewChallenge:
    """A new one-time password for ``profile`` (bound to ``names`` when given), recorded with an event."""
    from privca.issuance.profiles import load_profile

    store.require_ca()
    chosen = load_profile(profile, store.profiles_dir)
    if chosen.name == "scep-ra":
        raise UsageError("--profile scep-ra: the RA certificate is made by privca enroll ra, not enrolled")
    bound = check_names(names)
    password = base64.b32encode(secrets.token_bytes(15)).decode().rstrip("=")  # 120 bits, 24 characters
    expires = now + lifetime
    ledger = store.ledger
    with ledger.write():
        challenge_id = add_challenge(ledger, password_hash(password), chosen.name, bound, now, expires)
        events.record(ledger, now, "enroll-challenge", {"challenge": challenge_id, "profile": chosen.name,
                                                      "names": bound, "expires_at": iso(expires)})
    return NewChallenge(password, challenge_id, chosen.name, bound, iso(expires))


def problem_with(challenge: Challenge | None, profile: str, now: datetime) -> str | None:
    """Why a challenge does not authorise an enrollment under ``profile`` now; None when it does."""
    if challenge is None:
        return "wrong challenge password"
    if challenge.profile != profile:
        return f"challenge #{challenge.id} is for profile {challenge.profile}, not {profile}"
    if challenge.used_at is not None:
        return f"challenge #{challenge.id} was already used at {challenge.used_at}"
    if challenge.expires_at <= iso(now):
        return f"challenge #{challenge.id} expired at {challenge.expires_at}"
    return None


def find(store: Store, password: str) -> Challenge | None:
    return challenge_by_hash(store.ledger, password_hash(password))
