"""The rotation plan: what expires when, what to renew or rotate by which date, and which trust bundles must
reach which peers before which date. Read-only: it looks at the ledger and changes nothing.

Lead times (why these numbers):
- a leaf is renewed 30 days before it expires: Expressway and CUCM need a service restart after a certificate
  change, which is usually done in a maintenance window;
- the issuing CA is rotated once its remaining life is shorter than the longest default validity of the
  profiles in use plus 30 days: from then on, a new certificate would outlive it and privca refuses to issue it;
- the root is rolled over two years before it expires: the new root must reach every trust store in the estate,
  and every leaf must be renewed under it, before the old root is gone.

CRL freshness comes from the ledger's latest signed CRLs (``privca.ledger.crls.next_updates``); the plan also
says which CAs must keep publishing a CRL and until when.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from privca.common.serials import serial_text
from privca.errors import ProfileError, UsageError
from privca.issuance.profiles import available_profiles, load_profile
from privca.ledger import cas, certificates, crls, crosses
from privca.ledger.records import CA, CARole, CAStatus, CertificateStatus, iso
from privca.lifecycle.renewal import renewal_candidates
from privca.rules.validity import EXPIRING_DAYS

if TYPE_CHECKING:
    from privca.ledger.db import Ledger
    from privca.ledger.store import Store

# Renew a certificate when check and audit start to call it expiring, not after.
LEAF_RENEW_LEAD_DAYS = EXPIRING_DAYS
INTERMEDIATE_LEAD_DAYS = 30
ROOT_ROLLOVER_LEAD_DAYS = 730
DEFAULT_HORIZON_DAYS = 90

#: The CRL hook: next CRL update per CA id.
CrlSchedule = Callable[["Ledger", datetime], dict[int, datetime]]

# Where each kind of peer keeps the CAs it trusts (Cisco admin guides: Expressway "Trusted CA certificate",
# CUCM/Unity OS Administration "Certificate Management", CMS MMP trust bundles, IOS-XE trustpoints).
TRUST_STORES = {
    "expressway": "Trusted CA certificate list, on every cluster peer (then restart)",
    "cucm": "tomcat-trust and CallManager-trust (cup-xmpp-trust on IM and Presence)",
    "unity": "tomcat-trust and CallManager-trust",
    "cms": "the callbridge, webbridge3 and tls sip trust bundles",
    "cube": "one trustpoint per CA (crypto pki authenticate)",
}


def peer_for_profile(profile: str) -> str:
    """The kind of peer a profile's certificates go to: ``expressway-c`` -> ``expressway``; unknown -> itself."""
    for peer in TRUST_STORES:
        if profile == peer or profile.startswith(peer + "-"):
            return peer
    return profile


def _minus(moment: datetime, days: int) -> str:
    return iso(moment - timedelta(days=days))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _longest_leaf_validity(store: "Store", ledger: "Ledger", now: datetime) -> int:
    """The longest default validity among the profiles in use (all profiles when nothing is issued yet)."""
    names = certificates.profiles_in_use(ledger, now) or list(available_profiles(store.profiles_dir))
    longest = 0
    for name in names:
        try:
            longest = max(longest, load_profile(name, store.profiles_dir).validity_days)
        except ProfileError:
            continue  # a profile removed since: its certificates still show under "leaves"
    return longest or 397


def _ca_entries(store: "Store", ledger: "Ledger", now: datetime,
                until: dict[int, datetime | None]) -> list[dict[str, Any]]:
    stamp = iso(now)
    leaf_days = _longest_leaf_validity(store, ledger, now)
    entries = []
    for ca in cas.all_cas(ledger):
        entry: dict[str, Any] = {"name": ca.name, "role": ca.role.value, "subject": ca.subject,
                                 "status": ca.status.value, "not_after": iso(ca.not_after),
                                 "days_left": (ca.not_after - now).days, "needed_until": _iso(until[ca.id])}
        if ca.status is CAStatus.ACTIVE and ca.role is CARole.ISSUING:
            entry.update(action="rotate", due=_minus(ca.not_after, leaf_days + INTERMEDIATE_LEAD_DAYS),
                         command="privca rotate intermediate",
                         reason=f"after this date a {leaf_days}-day certificate would outlive it")
        elif ca.status is CAStatus.ACTIVE:
            entry.update(action="rotate", due=_minus(ca.not_after, ROOT_ROLLOVER_LEAD_DAYS),
                         command="privca rotate root",
                         reason="leaves two years to put the new root into every trust store and renew every leaf")
        elif ca.status is CAStatus.RETIRED and entry["needed_until"] and entry["needed_until"] >= stamp:
            entry.update(action="remove", due=entry["needed_until"], command=None,
                         reason="its last certificate expires: it may then leave the trust stores")
        else:
            entry.update(action=None, due=None, command=None, reason="no longer needed")
        entries.append(entry)
    return entries


def _leaf_entries(store: "Store", ledger: "Ledger", now: datetime, horizon_days: int) -> list[dict[str, Any]]:
    every = cas.all_cas(ledger)
    names = {ca.id: ca.name for ca in every}
    entries: list[dict[str, Any]] = []
    for candidate in renewal_candidates(store, now, horizon_days):
        entry: dict[str, Any] = dict(candidate.summary())
        ready = candidate.request is not None
        entry.update(issuer=names.get(candidate.old.issuer_id),
                     due=_minus(candidate.old.not_after, LEAF_RENEW_LEAD_DAYS),
                     action="renew" if ready else "renew-with-new-csr",
                     command=f"privca renew {entry['serial']}" if ready else
                     f"privca renew {entry['serial']} --csr NEW.csr")
        entries.append(entry)
    # A certificate whose issuing CA was revoked is no longer trusted by any peer that checks the CRL, whatever
    # its own expiry: it is due for renewal now, from the CA that issues today.
    revoked_issuers = {ca.id for ca in every if ca.status is CAStatus.REVOKED}
    listed = {entry["serial"] for entry in entries}  # as shown: summary() shows whole bytes
    for cert in certificates.query(ledger, now=now, statuses=("valid",)):
        if cert.issuer_id in revoked_issuers and serial_text(cert.serial) not in listed:
            entries.append({"serial": serial_text(cert.serial), "subject": cert.subject, "profile": cert.profile,
                            "not_after": iso(cert.not_after), "issuer": names.get(cert.issuer_id),
                            "key_source": None, "problems": [f"its issuing CA {names.get(cert.issuer_id)} was revoked"],
                            "due": iso(now), "action": "renew", "command": f"privca renew {serial_text(cert.serial)}"})
    oldest = now - timedelta(days=horizon_days)
    for cert in certificates.query(ledger, now=now, statuses=("expired",)):
        if cert.not_after < oldest or any(s.status is CertificateStatus.VALID
                                          for s in certificates.successors(ledger, cert.serial)):
            continue
        entries.append({"serial": serial_text(cert.serial), "subject": cert.subject, "profile": cert.profile,
                        "not_after": iso(cert.not_after), "issuer": names.get(cert.issuer_id), "key_source": None,
                        "problems": ["expired"], "due": iso(cert.not_after), "action": "renew",
                        "command": f"privca renew {serial_text(cert.serial)}"})
    return sorted(entries, key=lambda entry: entry["not_after"])


def _crl_entries(ledger: "Ledger", now: datetime, trusted: list[CA], until: dict[int, datetime | None],
                 crl_schedule: CrlSchedule | None) -> list[dict[str, Any]]:
    next_updates = crl_schedule(ledger, now) if crl_schedule is not None else {}
    return [{"ca": ca.name, "crl_url": ca.crl_url, "publish_until": _iso(until[ca.id]),
             "next_update": _iso(next_updates.get(ca.id))} for ca in trusted]


def _trust_entries(ledger: "Ledger", now: datetime,
                   trusted: list[CA]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per peer: every CA generation it must hold, and by when the new generations must be there.

    A generation must be in every trust store before the first certificate it signed is installed: the date of
    its first certificate or, for the active generation, the first renewal due of a certificate from an older
    generation (renewals come from the active one). Returns the per-peer entries and the per-generation dates.
    """
    summary = certificates.issuer_summary(ledger, now)
    every = cas.all_cas(ledger)

    def issuing_ids(ca: CA) -> set[int]:
        if ca.role is CARole.ISSUING:
            return {ca.id}
        return {child.id for child in every if child.parent_id == ca.id}

    generations = []
    for ca in trusted:
        own = issuing_ids(ca)
        used = min((first for ca_id in own if ca_id in summary and (first := summary[ca_id].first_issued)),
                   default=None)
        dates = [iso(used)] if used is not None else []
        if ca.status is CAStatus.ACTIVE:
            older = [item.next_expiry for ca_id, item in summary.items() if ca_id not in own and item.next_expiry]
            if older:
                dates.append(_minus(min(older), LEAF_RENEW_LEAD_DAYS))
        generations.append({"ca": ca.name, "subject": ca.subject,
                            "fingerprint_sha256": ca.fingerprint_sha256, "deliver_by": min(dates, default=None),
                            "state": "in_use" if used is not None and used <= now else "new"})
    new = [generation for generation in generations if generation["state"] == "new"]
    peers = sorted({peer_for_profile(name) for name in certificates.profiles_in_use(ledger, now)} | {"expressway"})
    cross_names = [f"{cross.subject} signed by {cross.issuer}" for cross in crosses.all_crosses(ledger, now)]
    bundles = [{
        "peer": peer,
        "trust_stores": TRUST_STORES.get(peer, "the peer's trusted CA store"),
        "bundle": f"privca export {peer if peer in TRUST_STORES else 'pem'} --out DIR",
        "cas": [generation["ca"] for generation in generations],
        "cross_certificates": cross_names,
        "new": [generation["ca"] for generation in new],
        "deliver_by": min((generation["deliver_by"] for generation in new if generation["deliver_by"]), default=None),
    } for peer in peers]
    return bundles, generations


def rotation_plan(store: "Store", now: datetime, *, horizon_days: int = DEFAULT_HORIZON_DAYS,
                  crl_schedule: CrlSchedule | None = None) -> dict[str, Any]:
    """Everything that expires or falls due, and the to-do list sorted by date (the ``plan --json`` shape).

    ``crl_schedule`` gives each CA's CRL nextUpdate; by default the ledger's latest signed CRLs.
    """
    if crl_schedule is None:
        crl_schedule = _latest_crl_schedule
    if horizon_days < 0:
        raise UsageError("--within: must be 0 or more days")
    ledger = store.require_ca()
    until = cas.needed_until(ledger)
    trusted = cas.trusted(ledger, now)
    ca_entries = _ca_entries(store, ledger, now, until)
    leaves = _leaf_entries(store, ledger, now, horizon_days)
    crl_entries = _crl_entries(ledger, now, trusted, until, crl_schedule)
    trust, generations = _trust_entries(ledger, now, trusted)

    actions: list[dict[str, Any]] = []
    for entry in ca_entries:
        if entry["action"] == "rotate":
            actions.append({"when": "deadline", "due": entry["due"], "what": f"rotate {entry['role']} CA {entry['name']}",
                            "command": entry["command"], "why": entry["reason"]})
        elif entry["action"] == "remove":
            actions.append({"when": "not_before", "due": entry["due"], "what": f"remove {entry['subject']} from the "
                            "trust stores", "command": None, "why": entry["reason"]})
    for leaf in leaves:
        what = (f"renew {leaf['subject']} ({leaf['serial']})" if leaf["action"] == "renew" else
                f"get a new CSR from {leaf['subject']} and renew {leaf['serial']}")
        actions.append({"when": "deadline", "due": leaf["due"], "what": what, "command": leaf["command"],
                        "why": "; ".join(leaf["problems"]) or f"expires {leaf['not_after']}"})
    for bundle in trust:
        if bundle["new"]:
            actions.append({"when": "deadline", "due": bundle["deliver_by"], "what": f"load {', '.join(bundle['new'])} into "
                            f"{bundle['peer']}: {bundle['trust_stores']}", "command": bundle["bundle"],
                            "why": "before the first certificate from the new generation is installed"})
    for crl in crl_entries:
        if crl["next_update"]:
            actions.append({"when": "deadline", "due": crl["next_update"], "what": f"publish a fresh CRL for {crl['ca']}",
                            "command": "privca crl", "why": "Expressway treats every certificate of a CA whose "
                            "CRL has expired as revoked"})
    # A "by" date already gone is overdue: it is to be done now, and says so rather than showing a past date.
    for action in actions:
        action["overdue"] = action["when"] == "deadline" and action["due"] is not None and action["due"] < iso(now)
    # Undated actions (a generation nothing has used yet) come first: they are due before anything else.
    actions.sort(key=lambda action: (action["due"] is not None, action["due"] or ""))
    return {"generated_at": iso(now), "horizon_days": horizon_days, "actions": actions, "cas": ca_entries,
            "leaves": leaves, "crls": crl_entries, "trust": trust, "generations": generations}


def _latest_crl_schedule(ledger: "Ledger", now: datetime) -> dict[int, datetime]:
    """The default CRL schedule: when each CA's latest signed CRL expires."""
    return crls.next_updates(ledger)
