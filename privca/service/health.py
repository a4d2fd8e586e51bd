"""``/health``: can this service do its job right now? JSON, 200 when it can, 503 when it cannot.

Checked on every call, from the live ledger: the ledger answers a query; every CA that must publish a CRL has one
that has not passed its nextUpdate (Expressway treats every certificate of a CA whose CRL is stale as revoked);
every CA that answers OCSP has a key the service could unlock. A load balancer or monitor polls it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from privca.errors import LedgerError, PrivcaError
from privca.ledger import crls
from privca.ledger.records import iso
from privca.ledger.status import unreadable
from privca.revocation.revoke import crl_issuers
from privca.service.app import ServiceApp
from privca.service.live import LiveState


def health_report(live: LiveState, now: datetime) -> dict[str, Any]:
    report: dict[str, Any] = {"status": "ok", "time": iso(now), "ledger": "ok", "crls": {}, "keys": {}}
    problems: list[str] = []
    try:
        ledger = live.ledger()
        broken = unreadable(ledger)
        if broken is not None:
            raise LedgerError(broken)
        snapshot = live.current()
        next_updates = crls.next_updates(ledger)
        for ca in crl_issuers(ledger, now):
            if not ca.crl_url:
                continue
            next_update = next_updates.get(ca.id)
            state = "missing" if next_update is None else "stale" if next_update <= now else "fresh"
            report["crls"][ca.name] = {"state": state, "next_update": None if next_update is None else iso(next_update)}
            if state != "fresh":
                problems.append(f"CRL of {ca.name} is {state}; run: privca crl")
        for ca_id in sorted(set(snapshot.key_index.values())):
            report["keys"][snapshot.ca_names[ca_id]] = "ok"
        for name, problem in snapshot.key_problems.items():
            report["keys"][name] = problem
            problems.append(f"key of {name} cannot be used: {problem}")
    except PrivcaError as exc:
        report["ledger"] = exc.one_line()
        problems.append("the ledger cannot be read")
    if problems:
        report["status"] = "fail"
        report["problems"] = problems
    return report


def install(app: ServiceApp, live: LiveState) -> None:
    async def health(request: Request) -> Response:
        report = health_report(live, live.clock())
        return Response(json.dumps(report, indent=1) + "\n", status_code=200 if report["status"] == "ok" else 503,
                        media_type="application/json", headers={"Cache-Control": "no-store"})

    app.route("/health", health)
