"""What is due, as findings with a stable key (so a finding is recognised when it is seen again).

Sources: the rotation plan (certificates to renew, CAs to rotate), the CRL status, and the last backup in the
ledger's event log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from privca.ledger.records import iso
from privca.ledger.status import last_event_at
from privca.lifecycle.plan import rotation_plan
from privca.revocation.revoke import crl_status

if TYPE_CHECKING:
    from privca.ledger.store import Store


@dataclass(frozen=True)
class Finding:
    key: str  # stable: "leaf-expiring:<serial>", "crl-stale:<ca>", "ca-rotate:<ca>", "backup-old"
    severity: str  # critical or warning
    summary: str
    command: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"key": self.key, "severity": self.severity, "summary": self.summary, "command": self.command}


def find(store: "Store", now: datetime, *, within_days: int, backup_max_age: timedelta) -> list[Finding]:
    """Everything due within ``within_days`` (or overdue), most severe first."""
    found: list[Finding] = []
    horizon = iso(now + timedelta(days=within_days))
    plan = rotation_plan(store, now, horizon_days=within_days)
    for leaf in plan["leaves"]:
        if leaf["due"] > horizon:
            continue
        overdue = leaf["not_after"] <= iso(now) or bool(leaf.get("problems"))
        problems = "; ".join(leaf.get("problems") or []) or f"expires {leaf['not_after']}"
        found.append(Finding(f"leaf-expiring:{leaf['serial']}", "critical" if overdue else "warning",
                             f"{leaf['subject']} (serial {leaf['serial']}, {leaf['profile']}): {problems}",
                             leaf.get("command")))
    for ca in plan["cas"]:
        if ca.get("action") == "rotate" and ca["due"] and ca["due"] <= horizon:
            late = ca["due"] <= iso(now)
            found.append(Finding(f"ca-rotate:{ca['name']}", "critical" if late else "warning",
                                 f"{ca['role']} CA {ca['name']} expires {ca['not_after']}: rotate "
                                 f"{'now' if late else 'by ' + ca['due']} ({ca['reason']})", ca.get("command")))
    for crl in crl_status(store, now):
        state = crl["state"]
        if state in ("stale", "missing"):
            found.append(Finding(f"crl-{state}:{crl['ca']}", "critical",
                                 f"CRL of {crl['ca']} is {state}: peers that check it treat every certificate of "
                                 "this CA as revoked", "privca crl && privca publish DIR"))
        elif state == "due":
            found.append(Finding(f"crl-due:{crl['ca']}", "warning",
                                 f"CRL of {crl['ca']} is due (next update {crl['next_update']})", "privca crl"))
    last = last_event_at(store.require_ca(), "backup")
    if last is None or now - last > backup_max_age:
        when = "never backed up" if last is None else f"last backup {iso(last)}"
        found.append(Finding("backup-old", "warning", f"store {store.path}: {when}", "privca backup FILE"))
    return sorted(found, key=lambda finding: (finding.severity != "critical", finding.key))
