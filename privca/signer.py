"""Issuance: CSR files -> policy -> certificates -> ledger -> files, all or nothing.

Every CSR in a batch is checked before any is signed; one bad CSR stops the whole batch with every problem listed.
Files are written under temporary names first, the ledger transaction commits, then the files are renamed into
place: the ledger is the source of truth, and a certificate is never on disk without being on record. A journal
(privca/journal.py) lists the temporary files first, so that a crash anywhere is finished or undone later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .ca import Issuer, active_issuing_row, chain_rows, fingerprint, load_issuer, pem_of, serial_hex
from .errors import CSRError, OutputError, PolicyViolation, PrivcaError, UsageError
from .fsutil import check_writable_target, fsync_dir, write_temp
from .keys import Passphrase
from .ledger import actor, iso
from .policy import IssuanceRequest, check, load_csr, read_csr_file
from .profiles import load_profile
from .records import certificate_record
from .store import Store

DEFAULT_PROFILE = "expressway-c"

PassphraseSource = Passphrase | Callable[[], Passphrase]
Progress = Callable[[int], None]


@dataclass
class _Planned:
    request: IssuanceRequest
    cert_path: Path
    chain_path: Path
    fullchain_path: Path


def _output_paths(csr_path: Path, out_dir: Path | None) -> tuple[Path, Path, Path]:
    folder = out_dir if out_dir is not None else csr_path.parent
    stem = csr_path.name[:-4] if csr_path.name.lower().endswith(".csr") else csr_path.stem
    return folder / f"{stem}.pem", folder / f"{stem}.chain.pem", folder / f"{stem}.fullchain.pem"


def plan(
    store: Store, csr_paths: Sequence[Path], *, profile: str = DEFAULT_PROFILE, out_dir: Path | None = None,
    force: bool = False,
) -> list[_Planned]:
    """Read and check every CSR and output path; raise one error listing every problem, or return the plan."""
    if not csr_paths:
        raise UsageError("issue: name at least one CSR file")
    chosen = load_profile(profile, store.profiles_dir)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is not a folder")
    from cryptography.hazmat.primitives.serialization import Encoding

    planned: list[_Planned] = []
    problems: list[tuple[type[PrivcaError], str]] = []
    seen_outputs: dict[Path, Path] = {}
    for csr_path in csr_paths:
        try:
            csr = load_csr(read_csr_file(csr_path), str(csr_path))
        except CSRError as exc:
            problems.append((CSRError, exc.message))
            continue
        request, found = check(csr, csr.public_bytes(Encoding.DER), str(csr_path), chosen)
        problems += [(PolicyViolation, f"{csr_path}: {problem}") for problem in found]
        outputs = _output_paths(csr_path, out_dir)
        for output in outputs:
            try:
                check_writable_target(output, overwrite=force)
            except OutputError as exc:
                problems.append((OutputError, exc.message))
            if output in seen_outputs:
                problems.append((UsageError, f"{csr_path}: would write {output}, as {seen_outputs[output]} does"))
            seen_outputs[output] = csr_path
        if request is not None:
            planned.append(_Planned(request, *outputs))
    if len(problems) == 1:
        kind, message = problems[0]
        raise kind(f"{message}; nothing issued")
    if problems:
        raise PolicyViolation(
            f"nothing issued; {len(problems)} problems in {len(csr_paths)} CSR(s)", problems=[m for _, m in problems]
        )
    return planned


def issue(
    store: Store,
    csr_paths: Sequence[Path],
    passphrase: PassphraseSource,
    *,
    now: datetime,
    profile: str = DEFAULT_PROFILE,
    days: int | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Issue one certificate per CSR; return their records (the ``issue --json`` shape)."""
    issuing_row = active_issuing_row(store)
    from .journal import recover

    recover(store)  # finish or undo what a killed privca left behind, before planning around it
    planned = plan(store, csr_paths, profile=profile, out_dir=out_dir, force=force)
    chosen = planned[0].request.profile
    if days is not None and not 1 <= days <= chosen.max_validity_days:
        raise UsageError(f"--days {days}: profile {chosen.name} allows 1 to {chosen.max_validity_days} days")
    issuer = load_issuer(store, issuing_row, passphrase() if callable(passphrase) else passphrase)
    if issuer.algorithm not in chosen.issuer_algorithms:
        raise PolicyViolation(
            f"profile {chosen.name}: needs an issuing CA with a {' or '.join(chosen.issuer_algorithms).upper()} key; "
            f"{issuing_row['name']} has {issuing_row['key_type']}"
        )
    signed = _sign_all(issuer, planned, days or chosen.validity_days, now, progress)
    return _record_and_write(store, issuer, planned, signed, now, force)


def _sign_all(issuer: Issuer, planned: list[_Planned], days: int, now: datetime, progress: Progress | None) -> list[Any]:
    from cryptography import x509

    from .builder import leaf_builder, validity

    not_before, not_after = validity(now, days)
    issuer_expiry = issuer.cert.not_valid_after_utc
    if not_after > issuer_expiry:
        raise PolicyViolation(
            f"{days} days would outlive the issuing CA {issuer.row['name']} (expires {iso(issuer_expiry)}); "
            "use a smaller --days or run: privca rotate intermediate"
        )
    signed = []
    for item in planned:
        builder = leaf_builder(item.request, issuer.cert, x509.random_serial_number(), not_before, not_after,
                               issuer.row["crl_url"], issuer.row["ocsp_url"])
        signed.append(issuer.sign(builder))
        if progress is not None:
            progress(1)
    return signed


def _record_and_write(
    store: Store, issuer: Issuer, planned: list[_Planned], certs: list[Any], now: datetime, force: bool
) -> list[dict[str, Any]]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from .journal import open_journal

    chain_pem = "".join(row["pem"] for row in chain_rows(store, issuer.row))
    who, issued_at = actor(), iso(now)
    rows: list[dict[str, Any]] = []
    files: list[tuple[Path, str, bytes]] = []  # (final path, serial, content)
    entries: list[dict[str, str]] = []
    absolute = {folder: str(folder.absolute()) for folder in {item.cert_path.parent for item in planned}}
    chain_bytes = chain_pem.encode()
    for item, cert in zip(planned, certs, strict=True):
        serial = serial_hex(cert.serial_number)
        leaf = cert.public_bytes(Encoding.PEM)
        leaf_pem = leaf.decode()
        folder = absolute[item.cert_path.parent]
        paths = {}
        for role, final, data in (("cert", item.cert_path, leaf), ("chain", item.chain_path, chain_bytes),
                                  ("fullchain", item.fullchain_path, leaf + chain_bytes)):
            paths[role] = os.path.join(folder, final.name)
            files.append((final, serial, data))
            entries.append({"final": paths[role], "tag": serial, "role": role})
        request = item.request
        rows.append({
            "serial": serial,
            "issuer_id": issuer.id,
            "profile": request.profile.name,
            "subject": request.subject.rfc4514_string(),
            "sans": json.dumps([entry.value for entry in request.sans]),
            "eku": json.dumps(list(request.profile.eku)),
            "key_type": request.key_algorithm,
            "key_size": request.key_param,
            "not_before": iso(cert.not_valid_before_utc),
            "not_after": iso(cert.not_valid_after_utc),
            "status": "valid",
            "fingerprint_sha256": fingerprint(cert),
            "csr_sha256": request.csr_sha256,
            "requested_eku": json.dumps(request.requested_eku),
            "issued_by": who,
            "issued_at": issued_at,
            "cert_path": paths["cert"],
            "chain_path": paths["chain"],
            "fullchain_path": paths["fullchain"],
            "pem": leaf_pem,
        })
    folders = {item.cert_path.parent for item in planned}
    created = _missing_folders(folders)
    temps: list[tuple[Path, Path]] = []
    ledger = store.ledger
    # The journal names every temporary file before the first is written, so that a crash at any point below
    # is finished or undone by the next write (or privca verify --repair); see privca/journal.py.
    with open_journal(store, "issue", entries, created_dirs=[f.absolute() for f in created],
                      issuer_id=issuer.id) as journal:
        try:
            for folder in sorted(created, key=lambda f: len(f.parts)):
                try:
                    folder.mkdir()
                except OSError as exc:
                    raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
            for final, serial, data in files:
                temps.append((write_temp(final, data, tag=serial, durable=False), final))
            with ledger.write():
                ledger.insert_certificates(rows)
                ledger.record_events(now, "issue", [
                    ({"profile": row["profile"], "subject": row["subject"], "issuer": issuer.row["name"],
                      "csr_sha256": row["csr_sha256"], "notes": item.request.notes}, row["serial"])
                    for row, item in zip(rows, planned, strict=True)])
        except BaseException:
            for temp, _ in temps:
                temp.unlink(missing_ok=True)
            for folder in sorted(created, key=lambda f: len(f.parts), reverse=True):  # leave the location as it was
                try:
                    folder.rmdir()
                except OSError:
                    pass
            journal.finish()
            raise
        # Committed: the certificates exist. Put the files in place; if this is cut short, the journal stays
        # and the files are finished from the ledger.
        for temp, final in temps:
            os.replace(temp, final)
        for folder in folders:
            fsync_dir(folder)
        journal.finish()
    records = []
    for row, item in zip(rows, planned, strict=True):
        record = certificate_record(row, with_status=False)
        record["requested_eku"] = item.request.requested_eku
        record["notes"] = item.request.notes
        records.append(record)
    return records


def _missing_folders(folders: set[Path]) -> list[Path]:
    """Every folder (and missing parent) that has to be created for ``folders``."""
    missing: set[Path] = set()
    for folder in folders:
        for candidate in (folder, *folder.parents):
            if candidate.exists() or candidate.is_symlink():
                break
            missing.add(candidate)
    return sorted(missing)


def issued_file_content(store: Store, journal: dict[str, Any], entry: dict[str, Any]) -> bytes | None:
    """Recovery rule for "issue" journals: what a certificate file holds, from the ledger; None if the
    certificate never committed (or a later certificate has since been written to the same file)."""
    ledger = store.ledger
    row = ledger.conn.execute(
        "SELECT id, pem FROM certificates WHERE issuer_id = ? AND serial = ?", (journal["issuer_id"], entry["tag"])
    ).fetchone()
    if row is None:
        return None
    column = {"cert": "cert_path", "chain": "chain_path", "fullchain": "fullchain_path"}[entry["role"]]
    # Only rows after this one (a rowid range, not a scan of the whole ledger) can have replaced the file.
    newer = ledger.conn.execute(f"SELECT 1 FROM certificates WHERE id > ? AND {column} = ? LIMIT 1",
                                (row["id"], entry["final"])).fetchone()
    if newer is not None:
        return None
    chain_pem = "".join(ca["pem"] for ca in chain_rows(store, ledger.ca(journal["issuer_id"])))
    return {"cert": row["pem"], "chain": chain_pem, "fullchain": row["pem"] + chain_pem}[entry["role"]].encode()
