"""The service's view of the ledger, kept current while it runs.

Every request first checks the CA table (one small query on a connection the worker keeps): a CA generation made
by ``privca rotate`` while the service runs, a CA revoked, a URL changed, are all seen by the next request. The key
of a new CA generation is unlocked with the secrets given at start-up, which the service keeps in memory for this
(like any long-running signer); a key that cannot be unlocked is reported by ``/health``, and its CA answers
``unauthorized`` until it can.

OCSP requests without a nonce (RFC 5019) are answered from the pre-signed responses in the store
(``privca.revocation.presign``) when they agree with the ledger and stay valid for at least a minute; otherwise the
response is signed now and, when nonce-less, written back as the new pre-signed response.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privca.authority.ca import Issuer, load_issuer, serial_hex
from privca.common.fsutil import atomic_write, ensure_private_dir
from privca.errors import PrivcaError, UsageError
from privca.keys.keystore import CASecrets
from privca.ledger import cas, certificates, crls
from privca.ledger.db import Ledger
from privca.ledger.records import CAStatus, CrlRecord
from privca.ledger.status import ca_table_version
from privca.revocation.ocsp import Responder, cert_id_keys
from privca.revocation.presign import PRESIGN_HASHES, agrees, cache_path
from privca.revocation.publish import url_path

if TYPE_CHECKING:
    from privca.ledger.store import Store

Clock = Callable[[], datetime]
LOG = logging.getLogger("privca.service")
# A cached answer is handed out only if it stays valid this long: a client must be able to use it.
CACHE_MARGIN = timedelta(minutes=1)


def http_path(url: str) -> str:
    """``/crl/issuing-1.crl`` for ``http://host/crl/issuing-1.crl``; ``/`` for a URL without a path."""
    from urllib.parse import urlsplit

    return "/" + str(url_path(url)) if urlsplit(url).path.strip("/") else "/"


@dataclass
class CASnapshot:
    """What the CA table said at the last check, and what was built from it."""

    rows: tuple[tuple[object, ...], ...] = ()
    responder: Responder | None = None
    ocsp_paths: set[str] = field(default_factory=set)
    crl_routes: dict[str, tuple[int, bool]] = field(default_factory=dict)
    #: (hash name, issuerKeyHash) -> CA id, for the CAs that answer OCSP
    key_index: dict[tuple[str, bytes], int] = field(default_factory=dict)
    ca_status: dict[int, CAStatus] = field(default_factory=dict)
    ca_names: dict[int, str] = field(default_factory=dict)
    key_problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OcspAnswer:
    der: bytes
    status: str  # good, revoked, unknown, unauthorized, malformedRequest, internalError, ...
    cached: bool
    this_update: datetime | None = None
    next_update: datetime | None = None


class LiveState:
    """CA routes, keys and OCSP answers from the ledger as it is now. One per worker process."""

    def __init__(self, store: "Store", secrets: CASecrets, clock: Clock) -> None:
        self.store, self.secrets, self.clock = store, secrets, clock
        self.ledger_path = store.ledger_path
        self._issuers: dict[int, Issuer] = {}
        self._snapshot = CASnapshot()
        self._ledger: Ledger | None = None
        self._ledger_pid = 0
        self._responses: dict[Path, tuple[int, bytes, Any]] = {}

    # --- the ledger connection and the CA table ---------------------------------------------------------------

    def ledger(self) -> Ledger:
        """This process's read connection (a connection must not cross the fork into the workers)."""
        if self._ledger is None or self._ledger_pid != os.getpid():
            self._ledger = Ledger(self.ledger_path)
            self._ledger_pid = os.getpid()
            self._responses.clear()
        return self._ledger

    def current(self) -> CASnapshot:
        """The snapshot for the CA table as it is now, rebuilt when the table changed."""
        rows = ca_table_version(self.ledger())
        if rows != self._snapshot.rows:
            self._snapshot = self._build(rows)
        return self._snapshot

    def _build(self, rows: tuple[tuple[object, ...], ...]) -> CASnapshot:
        ledger = self.ledger()
        now = self.clock()
        snapshot = CASnapshot(rows=rows)
        issuers = []
        for ca in cas.all_cas(ledger):
            snapshot.ca_status[ca.id] = ca.status
            snapshot.ca_names[ca.id] = ca.name
            if ca.crl_url:
                try:
                    path = http_path(ca.crl_url)
                except UsageError:
                    pass
                else:
                    snapshot.crl_routes[path] = (ca.id, False)
                    snapshot.crl_routes[path + ".pem"] = (ca.id, True)
            if not ca.ocsp_url:
                continue
            # The path keeps answering (unauthorized) after its CA is revoked or expired: peers are told so.
            snapshot.ocsp_paths.add(http_path(ca.ocsp_url).rstrip("/") or "/")
            if ca.status is CAStatus.REVOKED or ca.not_after <= now:
                continue
            issuer = self._issuers.get(ca.id)
            if issuer is None:
                try:
                    issuer = load_issuer(self.store, ca, self.secrets)
                except PrivcaError as exc:
                    # Not fatal: the other CAs go on answering; /health turns 503 and says which key.
                    snapshot.key_problems[ca.name] = exc.one_line()
                    if self._snapshot.rows:  # at start-up the caller reports it (and stops)
                        LOG.error("CA %s: cannot unlock its key, so it answers OCSP with unauthorized: %s",
                                  ca.name, exc.one_line())
                    continue
                self._issuers[ca.id] = issuer
                LOG.info("CA %s: answers OCSP at %s", ca.name, ca.ocsp_url)
            issuers.append(issuer)
            for hash_name, _name_hash, key_hash in cert_id_keys(issuer.cert):
                snapshot.key_index[(hash_name, key_hash)] = ca.id
        if issuers:
            snapshot.responder = Responder(self.ledger_path, issuers)
        return snapshot

    # --- CRLs -------------------------------------------------------------------------------------------------

    def crl(self, ca_id: int) -> CrlRecord | None:
        """The CA's latest CRL, or None if none was signed yet (read per request: a new one is served at once)."""
        return crls.latest(self.ledger(), ca_id)

    # --- OCSP -------------------------------------------------------------------------------------------------

    def ocsp(self, request_der: bytes) -> OcspAnswer:
        from cryptography.x509 import ocsp

        now = self.clock()
        snapshot = self.current()
        if snapshot.responder is None:
            return _describe(_unauthorized(), cached=False)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            hash_name = request.hash_algorithm.name
            key = (hash_name, request.issuer_key_hash)
            plain = len(request.extensions) == 0  # no nonce, nothing to check: the RFC 5019 case
            serial = request.serial_number
        except Exception:  # noqa: BLE001 - the responder answers malformedRequest for all of these
            plain, key, serial, hash_name = False, ("", b""), 0, ""
        ca_id = snapshot.key_index.get(key)
        if plain and ca_id is not None and hash_name in PRESIGN_HASHES \
                and snapshot.ca_status.get(ca_id) is not CAStatus.REVOKED:
            answer = self._from_cache(ca_id, hash_name, request.issuer_key_hash, serial, now)
            if answer is not None:
                return answer
        der = snapshot.responder.respond(request_der, now)
        answer = _describe(der, cached=False)
        if plain and ca_id is not None and hash_name in PRESIGN_HASHES and answer.status in ("good", "revoked"):
            self._store(cache_path(self.store.path, hash_name, request.issuer_key_hash, serial_hex(serial)), der)
        return answer

    def _from_cache(self, ca_id: int, hash_name: str, key_hash: bytes, serial: int, now: datetime) -> OcspAnswer | None:
        found = certificates.status_under(self.ledger(), ca_id, serial_hex(serial))
        if found is None:
            return None
        path = cache_path(self.store.path, hash_name, key_hash, serial_hex(serial))
        loaded = self._load(path)
        if loaded is None:
            return None
        der, parsed = loaded
        if not agrees(parsed, found) or parsed.next_update_utc is None or parsed.next_update_utc <= now + CACHE_MARGIN \
                or parsed.this_update_utc > now:
            return None
        return OcspAnswer(der, "revoked" if found[0] else "good", True, parsed.this_update_utc,
                          parsed.next_update_utc)

    def _load(self, path: Path) -> tuple[bytes, Any] | None:
        """The response in ``path``, parsed once per version of the file (its mtime)."""
        from cryptography.x509 import ocsp

        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        held = self._responses.get(path)
        if held is not None and held[0] == mtime:
            return held[1], held[2]
        try:
            der = path.read_bytes()
            parsed = ocsp.load_der_ocsp_response(der)
        except (OSError, ValueError):
            return None
        if len(self._responses) > 100_000:  # bounded: a worker never holds more than ~100 MB of responses
            self._responses.clear()
        self._responses[path] = (mtime, der, parsed)
        return der, parsed

    def _store(self, path: Path, der: bytes) -> None:
        try:
            ensure_private_dir(path.parent)
            atomic_write(path, der, overwrite=True)
        except PrivcaError as exc:  # a read-only store still answers, only without caching
            LOG.warning("%s: cannot cache the OCSP response: %s", path, exc.one_line())

    # --- health -----------------------------------------------------------------------------------------------

    def key_problems(self) -> dict[str, str]:
        return dict(self.current().key_problems)


def _unauthorized() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    return bytes(ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
                 .public_bytes(Encoding.DER))


def _describe(der: bytes, *, cached: bool) -> OcspAnswer:
    """The answer with its status read back from the DER (for the metrics and the caching headers)."""
    from cryptography.x509 import ocsp

    response = ocsp.load_der_ocsp_response(der)
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return OcspAnswer(der, _camel(response.response_status.name), cached)
    return OcspAnswer(der, response.certificate_status.name.lower(), cached, response.this_update_utc,
                      response.next_update_utc)


def _camel(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(part.title() for part in rest)
