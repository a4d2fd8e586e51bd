"""``/metrics`` in the Prometheus text format (prometheus_client).

Gauges are read from the live ledger at each scrape, so every worker reports the same figures:

- ``privca_crl_age_seconds{ca}`` and ``privca_crl_next_update_seconds{ca}`` (negative once the CRL is stale);
- ``privca_certificates{status,profile}`` (valid, revoked, hold, expired);
- ``privca_soonest_expiry_seconds``: until the first valid certificate expires;
- ``privca_last_backup_age_seconds``: since the last ``privca backup`` (absent if there was none).

``privca_ocsp_responses_total{status,source}`` counts OCSP answers (good, revoked, unknown, unauthorized,
malformedRequest...; source ``cache`` for pre-signed, ``live`` for signed on request). With several workers the
counts are summed over them through files in ``PROMETHEUS_MULTIPROC_DIR``, which ``privca serve`` sets up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from privca.ledger import cas, crls
from privca.ledger.status import certificates_by_status_and_profile, last_event_at, soonest_expiry
from privca.service.app import ServiceApp
from privca.service.live import LiveState, OcspAnswer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class LedgerCollector:
    """Gauges computed from the ledger when scraped."""

    def __init__(self, live: LiveState) -> None:
        self.live = live

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        now = self.live.clock()
        ledger = self.live.ledger()
        names = cas.names(ledger)
        age = GaugeMetricFamily("privca_crl_age_seconds", "Seconds since the CA's latest CRL was signed (thisUpdate)",
                                labels=["ca"])
        left = GaugeMetricFamily("privca_crl_next_update_seconds",
                                 "Seconds until the CA's latest CRL passes its nextUpdate (negative: stale)",
                                 labels=["ca"])
        for ca_id, next_update in sorted(crls.next_updates(ledger).items()):
            signed = crls.fingerprint(ledger, ca_id)  # (sha256, thisUpdate), without reading the CRL
            if signed is not None:
                age.add_metric([names[ca_id]], (now - signed[1]).total_seconds())
            left.add_metric([names[ca_id]], (next_update - now).total_seconds())
        yield age
        yield left
        certs = GaugeMetricFamily("privca_certificates", "Issued certificates by status and profile",
                                  labels=["status", "profile"])
        for status, profile, count in certificates_by_status_and_profile(ledger, now):
            certs.add_metric([status, profile], count)
        yield certs
        soonest = soonest_expiry(ledger, now)
        if soonest is not None:
            yield GaugeMetricFamily("privca_soonest_expiry_seconds",
                                    "Seconds until the first valid certificate expires",
                                    value=(soonest - now).total_seconds())
        backup = last_event_at(ledger, "backup")
        if backup is not None:
            yield GaugeMetricFamily("privca_last_backup_age_seconds", "Seconds since the last privca backup",
                                    value=(now - backup).total_seconds())


def ocsp_counter() -> Callable[[OcspAnswer], None]:
    """A function that counts one OCSP answer (in this worker's file when several workers run)."""
    from prometheus_client import CollectorRegistry, Counter

    counter = Counter("privca_ocsp_responses", "OCSP answers by status and by where they came from",
                      ["status", "source"], registry=CollectorRegistry())

    def count(answer: OcspAnswer) -> None:
        counter.labels(answer.status, "cache" if answer.cached else "live").inc()

    count.counter = counter  # type: ignore[attr-defined]
    return count


def install(app: ServiceApp, live: LiveState, count: Callable[[OcspAnswer], None]) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    async def metrics(request: Request) -> Response:
        registry = CollectorRegistry()
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Single(count.counter))  # type: ignore[attr-defined]
        registry.register(LedgerCollector(live))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    app.route("/metrics", metrics)


class _Single:
    """This process's counter, when there is only one worker (no shared files)."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def collect(self) -> Iterator[Any]:
        yield from self.counter.collect()
