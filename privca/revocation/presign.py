"""Pre-signed OCSP responses (RFC 5019, the lightweight profile): one per certificate, signed ahead of time.

Large PKIs answer OCSP from responses signed in advance and served as files, by any web server or CDN: no CA key
near the web server, no signing per request, and a responder that keeps answering while privca is stopped.

The responses live in the store, ``ocsp/<hash>/<issuerKeyHash hex>/<serial hex>.der``, one per certificate and per
CertID hash (SHA-1 as RFC 5019 asks, SHA-256 as Cisco Expressway asks). ``privca publish`` copies them under the
web server's document root, named as an RFC 6960 GET asks for them; ``privca serve`` answers nonce-less requests
from the same files. Each run re-signs only what changed status or is past half its validity, so running it every
few minutes is cheap and a revocation reaches the files within one run.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from privca.authority.ca import Issuer, load_issuer
from privca.common.fsutil import atomic_write, ensure_private_dir
from privca.errors import OutputError
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger import cas
from privca.ledger.db import Ledger
from privca.ledger.records import CA, CAStatus, iso
from privca.ledger.status import Status, unexpired_issued
from privca.revocation.ocsp import issuer_hashes, sign_status

if TYPE_CHECKING:
    from privca.ledger.store import Store

# RFC 5019 asks for SHA-1 CertIDs; Expressway sends SHA-256 ones. A request with any other hash is signed live.
PRESIGN_HASHES = ("sha1", "sha256")
# As long as a live answer is valid (privca.revocation.ocsp.RESPONSE_VALIDITY): a peer caches a "good" at most an
# hour after a revocation. Re-signed once half of it has passed, so the files are never stale between runs.
PRESIGN_VALIDITY = timedelta(hours=1)
CACHE_DIR = "ocsp"


@dataclass(frozen=True)
class PresignedResponse:
    """One pre-signed answer: where it is in the store, and the GET request it answers."""

    ca_id: int
    ca_name: str
    ocsp_url: str
    hash_name: str
    serial: str
    path: Path
    request_der: bytes

    @property
    def get_name(self) -> PurePosixPath:
        """The path an RFC 6960 GET request asks for under the OCSP URL (base64 of the request; its slashes
        become folders, which is how a web server maps the URL to a file)."""
        return PurePosixPath(base64.b64encode(self.request_der).decode("ascii"))


def cache_path(store_dir: Path, hash_name: str, issuer_key_hash: bytes, serial: str) -> Path:
    return store_dir / CACHE_DIR / hash_name / issuer_key_hash.hex() / f"{serial}.der"


def live_ocsp_cas(ledger: Ledger, now: datetime) -> list[CA]:
    """The CAs that answer OCSP at ``now``: with an OCSP URL, not revoked, not expired."""
    return [ca for ca in cas.all_cas(ledger)
            if ca.ocsp_url and ca.status is not CAStatus.REVOKED and ca.not_after > now]


def presign(store: "Store", secrets: "CASecrets | SecretSource", *, now: datetime,
            validity: timedelta = PRESIGN_VALIDITY) -> tuple[list[PresignedResponse], dict[str, int]]:
    """Bring the store's pre-signed responses up to date for every certificate of every CA that answers OCSP.

    Returns the responses (all of them, kept or new) and counts ``{"signed": n, "kept": m}``. The CA keys are
    unlocked only if something needs signing.
    """
    ledger = store.require_ca()
    unlock = CASecrets.of(secrets)
    issuers: dict[int, Issuer] = {}
    done: list[PresignedResponse] = []
    counts = {"signed": 0, "kept": 0}
    for ca in live_ocsp_cas(ledger, now):
        issued = unexpired_issued(ledger, ca.id, now)
        for hash_name in PRESIGN_HASHES:
            name_hash, key_hash = issuer_hashes(ca.certificate, hash_name)
            for serial, found in issued:
                path = cache_path(store.path, hash_name, key_hash, serial)
                if not is_current(path, found, now, validity / 2):
                    if ca.id not in issuers:
                        issuers[ca.id] = load_issuer(store, ca, unlock)
                    der = sign_status(issuers[ca.id], _hash(hash_name), int(serial, 16), found, now,
                                      validity=validity)
                    ensure_private_dir(path.parent)
                    atomic_write(path, der, mode=0o600, overwrite=True)  # in the store: owner-only like the rest
                    counts["signed"] += 1
                else:
                    counts["kept"] += 1
                done.append(PresignedResponse(ca.id, ca.name, str(ca.ocsp_url), hash_name, serial, path,
                                              _request(name_hash, key_hash, serial, hash_name)))
    return done, counts


def is_current(path: Path, found: Status, now: datetime, margin: timedelta) -> bool:
    """The response at ``path`` says what the ledger row ``found`` says and stays valid past ``now + margin``."""
    cached = read_response(path)
    return cached is not None and agrees(cached, found) and cached.next_update_utc is not None \
        and cached.next_update_utc > now + margin and cached.this_update_utc <= now


def read_response(path: Path) -> Any:
    """The parsed response in ``path``, or None when there is none or it cannot be read."""
    from cryptography.x509 import ocsp

    try:
        return ocsp.load_der_ocsp_response(path.read_bytes())
    except (OSError, ValueError):
        return None


def agrees(response: Any, found: Status | None) -> bool:
    """The response's status is the ledger's (good, or revoked at the same time for the same reason)."""
    from cryptography.x509 import ocsp

    from privca.revocation.revoke import reason_flag

    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL or found is None:
        return False
    revoked, revoked_at, reason = found
    if not revoked:
        return bool(response.certificate_status == ocsp.OCSPCertStatus.GOOD)
    return bool(response.certificate_status == ocsp.OCSPCertStatus.REVOKED and revoked_at is not None
                and iso(response.revocation_time_utc) == iso(revoked_at)
                and response.revocation_reason == reason_flag(reason))


def _hash(name: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[name]


def _request(name_hash: bytes, key_hash: bytes, serial: str, hash_name: str) -> bytes:
    """The DER of the nonce-less request for this certificate, byte for byte what ``openssl ocsp -no_nonce``
    sends (checked in the tests)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, int(serial, 16),
                                                                _hash(hash_name)).build()
    return bytes(request.public_bytes(Encoding.DER))


def write_tree(responses: list[PresignedResponse], out_dir: Path, roots: dict[str, PurePosixPath]) -> Iterator[Path]:
    """Copy each response to ``out_dir/<OCSP URL path>/<base64 request>`` and yield the files written.

    ``roots`` maps each OCSP URL to its path inside ``out_dir``. Each file's modification time is the response's
    thisUpdate, so that a web server's Last-Modified and Expires (nginx: ``expires modified +1h``) are the
    response's own thisUpdate and nextUpdate, as RFC 5019 section 6.2 asks.
    """
    for response in responses:
        target = out_dir / roots[response.ocsp_url] / response.get_name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            der = response.path.read_bytes()
        except OSError as exc:
            raise OutputError(f"{target.parent}: cannot write the OCSP response ({exc.strerror})") from None
        if target.is_file() and _same_file(target, der):
            yield target
            continue
        atomic_write(target, der, overwrite=True)
        parsed = read_response(response.path)
        if parsed is not None:
            moment = parsed.this_update_utc.timestamp()
            os.utime(target, (moment, moment))
        yield target


def _same_file(path: Path, der: bytes) -> bool:
    try:
        return path.read_bytes() == der
    except OSError:
        return False
