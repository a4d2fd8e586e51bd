"""Issuance: CSR files -> policy -> certificates -> ledger -> files, all or nothing.

Every CSR in a batch is checked before any is signed; one bad CSR stops the whole batch with every problem listed.
Files are written under temporary names first, the ledger transaction commits, then the files are renamed into
place: the ledger is the source of truth, and a certificate is never on disk without being on record. A journal
(privca/ledger/journal.py) lists the temporary files first, so that a crash anywhere is finished or undone later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from privca.authority.ca import (Issuer, active_issuing, check_signing_clock, fingerprint, load_issuer, seal_with_issuer,
                                 serial_hex)
from privca.errors import CSRError, LedgerError, OutputError, PolicyViolation, PrivcaError, UsageError
from privca.common.fsutil import check_writable_target, fsync_dir, refuse_inside_store, write_temp
from privca.keys.keystore import CASecrets, SecretSource
from privca.ledger import cas, certificates, events
from privca.ledger.db import Ledger, actor
from privca.issuance.policy import IssuanceRequest, check, load_csr, read_csr_file
from privca.issuance.profiles import load_profile
from privca.ledger.records import CA, CAStatus, CertificateStatus, IssuedCertificate, Json, iso
from privca.ledger.store import Store
from privca.rules import chain as chain_rules

if TYPE_CHECKING:
    from cryptography import x509

DEFAULT_PROFILE = "expressway-c"
MAX_SIGNING_THREADS = 8  # past a few cores the single thread that builds and records is the limit

Progress = Callable[[int], None]


@dataclass
class PlannedCertificate:
    """One certificate about to be signed: what goes in it, where its files go, and what the ledger links it to."""

    request: IssuanceRequest
    # None for a certificate delivered over an enrollment protocol (SCEP, EST): it is on record and goes back to
    # the device in the response; ``privca show SERIAL --pem`` writes it when a file is wanted.
    cert_path: Path | None
    chain_path: Path | None
    fullchain_path: Path | None
    csr_der: bytes | None = None  # kept on record so the certificate can later be renewed with the same key
    replaces: str | None = None  # serial of the certificate this one renews

    @property
    def outputs(self) -> tuple[Path, ...]:
        return tuple(path for path in (self.cert_path, self.chain_path, self.fullchain_path) if path is not None)


@dataclass(frozen=True)
class Issued:
    """A certificate just issued: its ledger record and what the checks noted about its request."""

    certificate: IssuedCertificate
    notes: tuple[str, ...] = ()
    #: During a root rollover: root name -> the chain file written for peers that trust only that root.
    chains_for_other_roots: tuple[tuple[str, str], ...] = ()

    def to_json(self, names: dict[int, str] | None = None) -> Json:
        """The ``issue --json`` shape: the certificate's record plus the notes of the checks."""
        data = self.certificate.to_json(names=names)
        data["requested_eku"] = list(self.certificate.requested_eku)
        data["notes"] = list(self.notes)
        if self.chains_for_other_roots:
            data["chains_for_other_roots"] = dict(self.chains_for_other_roots)
        return data


#: Runs inside the transaction that records issued certificates, for changes that must commit with them.
InTransaction = Callable[[Ledger, list[IssuedCertificate]], None]


def output_paths(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    """``<stem>.pem``, ``<stem>.chain.pem`` and ``<stem>.fullchain.pem`` in ``folder``."""
    return folder / f"{stem}.pem", folder / f"{stem}.chain.pem", folder / f"{stem}.fullchain.pem"


STDIN = Path("-")  # a CSR on standard input: the caller reads it and passes its bytes as ``stdin``
STDIN_NAME = "- (stdin)"


def _output_paths(csr_path: Path, out_dir: Path | None,
                  csr: "x509.CertificateSigningRequest | None" = None) -> tuple[Path, Path, Path]:
    if csr_path == STDIN:  # no file name to follow: the files are named after the CSR's CN (or stdin.pem)
        assert out_dir is not None
        return output_paths(out_dir, _stem_from_cn(csr))
    stem = csr_path.name[:-4] if csr_path.name.lower().endswith(".csr") else csr_path.stem
    return output_paths(out_dir if out_dir is not None else csr_path.parent, stem)


def _stem_from_cn(csr: "x509.CertificateSigningRequest | None") -> str:
    import re

    from privca.common.names import common_name

    cn = common_name(csr.subject) if csr is not None else ""
    return cn if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", cn) else "stdin"


def output_problems(outputs: Sequence[Path], source: object, *, force: bool,
                    seen: dict[Path, object]) -> list[tuple[type[PrivcaError], str]]:
    """Why the files of one certificate cannot be written; ``seen`` catches two certificates sharing a file."""
    problems: list[tuple[type[PrivcaError], str]] = []
    for output in outputs:
        try:
            check_writable_target(output, overwrite=force)
        except OutputError as exc:
            problems.append((OutputError, exc.message))
        if output in seen:
            problems.append((UsageError, f"{source}: would write {output}, as {seen[output]} does"))
        seen[output] = source
    return problems


def raise_problems(problems: Sequence[tuple[type[PrivcaError], str]], count: int, what: str) -> None:
    """Nothing is issued when anything is wrong: one problem as itself, several as one error listing them all."""
    if len(problems) == 1:
        kind, message = problems[0]
        raise kind(f"{message}; nothing issued")
    if problems:
        raise PolicyViolation(f"nothing issued; {len(problems)} problems in {count} {what}",
                              problems=[message for _, message in problems])


def check_out_dir(out_dir: Path | None) -> None:
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is not a folder")


def plan(
    store: Store, csr_paths: Sequence[Path], *, profile: str = DEFAULT_PROFILE, out_dir: Path | None = None,
    force: bool = False, stdin: bytes | None = None,
) -> list[PlannedCertificate]:
    """Read and check every CSR and output path; raise one error listing every problem, or return the plan."""
    if not csr_paths:
        raise UsageError("issue: name at least one CSR file")
    if STDIN in csr_paths and (out_dir is None or list(csr_paths).count(STDIN) > 1):
        raise UsageError("-: a CSR on standard input needs --out DIR for its files, and can be given once")
    chosen = load_profile(profile, store.profiles_dir)
    check_out_dir(out_dir)
    for folder in {out_dir} if out_dir is not None else {path.parent for path in csr_paths}:
        refuse_inside_store(folder, store.path, "--out" if out_dir is not None else "the CSR's folder")
    from cryptography.hazmat.primitives.serialization import Encoding

    planned: list[PlannedCertificate] = []
    problems: list[tuple[type[PrivcaError], str]] = []
    seen_outputs: dict[Path, object] = {}
    for csr_path in csr_paths:
        source = STDIN_NAME if csr_path == STDIN else str(csr_path)
        try:
            data = (stdin or b"") if csr_path == STDIN else read_csr_file(csr_path)
            csr = load_csr(data, source)
        except CSRError as exc:
            problems.append((CSRError, exc.message))
            continue
        der = csr.public_bytes(Encoding.DER)
        request, found = check(csr, der, source, chosen)
        problems += [(PolicyViolation, f"{source}: {problem}") for problem in found]
        outputs = _output_paths(csr_path, out_dir, csr)
        problems += output_problems(outputs, csr_path, force=force, seen=seen_outputs)
        if request is not None:
            planned.append(PlannedCertificate(request, *outputs, csr_der=der))
    raise_problems(problems, len(csr_paths), "CSR(s)")
    return planned


def issue(
    store: Store,
    csr_paths: Sequence[Path],
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    profile: str = DEFAULT_PROFILE,
    days: int | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    stdin: bytes | None = None,
) -> list[Issued]:
    """Issue one certificate per CSR (``-``: the CSR in ``stdin``); return what was issued (``Issued.to_json`` is
    the ``issue --json`` shape)."""
    active_issuing(store)  # no CA, no point reading CSRs
    from privca.ledger.journal import recover

    recover(store)  # finish or undo what a killed privca left behind, before planning around it
    planned = plan(store, csr_paths, profile=profile, out_dir=out_dir, force=force, stdin=stdin)
    return sign_and_record(store, planned, secrets, now=now, days=days, progress=progress)


def sign_and_record(
    store: Store,
    planned: Sequence[PlannedCertificate],
    secrets: CASecrets | SecretSource,
    *,
    now: datetime,
    days: int | None = None,
    progress: Progress | None = None,
    action: str = "issue",
    in_transaction: InTransaction | None = None,
    channel: str = "cli",
    issuer: Issuer | None = None,
) -> list[Issued]:
    """Sign planned certificates with the active issuing CA, record them and write their files, all or nothing.

    The one path for every leaf privca signs (``issue``, ``renew``, and enrollment over SCEP or EST).
    ``in_transaction(ledger, records)`` runs inside the ledger transaction that records the certificates, for
    changes that must commit with them. ``channel`` says how the request came in (cli, scep, est); ``issuer`` is
    an issuing CA a long-running service unlocked once, used while it is still the active one.
    """
    issuing_ca = active_issuing(store)
    lifetimes = validity_days(planned, days)
    check_lifetimes(issuing_ca, lifetimes, now)  # before the passphrase is asked for
    if issuer is None or issuer.id != issuing_ca.id:
        issuer = load_issuer(store, issuing_ca, secrets, now=now)
    else:  # unlocked earlier by a service: the clock is still checked before each signature
        check_signing_clock(store, issuing_ca, now)
        seal_with_issuer(store, issuer)
    for chosen in {item.request.profile.name: item.request.profile for item in planned}.values():
        if issuer.algorithm not in chosen.issuer_algorithms:
            raise PolicyViolation(
                f"profile {chosen.name}: needs an issuing CA with a {' or '.join(chosen.issuer_algorithms).upper()} "
                f"key; {issuing_ca.name} has {issuing_ca.key_type}"
            )
    signed = _sign_all(issuer, planned, lifetimes, now, progress)
    return _record_and_write(store, issuer, planned, signed, now, action, in_transaction, channel)


def validity_days(planned: Sequence[PlannedCertificate], days: int | None) -> list[int]:
    """Each certificate's lifetime: ``days`` when given (within its profile's maximum), else the profile's."""
    lifetimes = []
    for item in planned:
        chosen = item.request.profile
        if days is not None and not 1 <= days <= chosen.max_validity_days:
            raise UsageError(f"--days {days}: profile {chosen.name} allows 1 to {chosen.max_validity_days} days")
        lifetimes.append(days or chosen.validity_days)
    return lifetimes


def check_lifetimes(issuing_ca: CA, lifetimes: Sequence[int], now: datetime) -> None:
    """Refuse lifetimes the issuing CA cannot cover. Needs only the CA's certificate, so ``issue --dry-run``
    applies it exactly as the real run does."""
    from privca.issuance.builder import validity

    issuer_expiry = issuing_ca.certificate.not_valid_after_utc
    if issuer_expiry <= now:
        raise PolicyViolation(f"issuing CA {issuing_ca.name}: expired on {iso(issuer_expiry)}; nothing issued; "
                              "run: privca rotate intermediate")
    for days in sorted(set(lifetimes)):
        if validity(now, days)[1] > issuer_expiry:
            raise PolicyViolation(
                f"{days} days would outlive the issuing CA {issuing_ca.name} (expires {iso(issuer_expiry)}); "
                "use a smaller --days or run: privca rotate intermediate"
            )


def _sign_all(issuer: Issuer, planned: Sequence[PlannedCertificate], lifetimes: list[int], now: datetime,
              progress: Progress | None) -> list["x509.Certificate"]:
    from cryptography import x509

    from privca.issuance.builder import leaf_builder, validity

    from privca.common.names import printable
    from privca.common.urls import normalized_url

    for url, what in ((issuer.ca.crl_url, "CRL URL"), (issuer.ca.ocsp_url, "OCSP URL")):
        # Checked where URLs enter (init, ca set-url); a ledger written by an older privca or edited by hand
        # may still hold one that cannot be encoded: say so instead of failing inside the certificate builder.
        try:
            problem = None if not url or normalized_url(url) == url else "is not in the form certificates carry"
        except ValueError as exc:
            problem = str(exc)
        if problem:
            raise LedgerError(f"CA {issuer.name}: its {what} {printable(url or '')!r} {problem}; nothing issued; "
                              f"set it again with privca ca set-url")
    check_lifetimes(issuer.ca, lifetimes, now)

    def builders() -> Iterator["x509.CertificateBuilder"]:
        for item, days in zip(planned, lifetimes, strict=True):
            not_before, not_after = validity(now, days)
            yield leaf_builder(item.request, issuer.cert, x509.random_serial_number(), not_before, not_after,
                               issuer.ca.crl_url, issuer.ca.ocsp_url)

    signed = []
    for cert in _signed_in_order(issuer, builders(), len(planned)):
        signed.append(cert)
        if progress is not None:
            progress(1)
    return signed


def _signed_in_order(issuer: Issuer, builders: Iterator["x509.CertificateBuilder"],
                     count: int) -> Iterator["x509.Certificate"]:
    """The certificates of ``builders`` signed by ``issuer``, in order. cryptography lets go of Python's global
    lock while it signs, so a batch signs on one thread per core while this thread makes the next builders:
    1,000 RSA-3072 signatures took 1.1 s on one thread and 0.6 s on two (two idle cores). A token key signs
    one operation at a time under its session's lock (privca.keys.hsm), so there the threads only wait."""
    threads = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                  MAX_SIGNING_THREADS, count)
    if threads < 2:
        yield from map(issuer.sign, builders)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(threads, thread_name_prefix="privca-sign")
    try:
        yield from pool.map(issuer.sign, builders)
    finally:
        pool.shutdown(cancel_futures=True)  # on an error or ^C, sign nothing more


def _record_and_write(
    store: Store, issuer: Issuer, planned: Sequence[PlannedCertificate], certs: list["x509.Certificate"],
    now: datetime, action: str, in_transaction: InTransaction | None, channel: str,
) -> list[Issued]:
    """Record the signed certificates and put their files in place, all or nothing (see the module docstring)."""
    chain_bytes = chain_rules.chain_pem(cas.chain_pems(store.ledger, issuer.ca)).encode()
    records, files = _records_and_files(issuer, planned, certs, now, chain_bytes, channel)
    issued = [Issued(record, tuple(item.request.notes)) for record, item in zip(records, planned, strict=True)]
    if not files:  # delivered over a protocol: the ledger transaction is the whole write, no journal needed
        with store.ledger.write():
            _commit(store.ledger, issuer, planned, records, now, action, in_transaction)
        return issued
    files += _other_root_chains(store, issuer, planned, records, now)
    entries = [{"final": str(final), "tag": serial, "role": role} for final, serial, role, _ in files]
    folders = {item.cert_path.parent for item in planned if item.cert_path is not None}
    created = _missing_folders(folders)
    # The journal names every temporary file before the first is written, so that a crash at any point below
    # is finished or undone by the next write (or privca verify --repair); see privca/ledger/journal.py.
    from privca.ledger.journal import open_journal

    with open_journal(store, "issue", entries, created_dirs=[f.absolute() for f in created],
                      issuer_id=issuer.id) as journal:
        temps: list[tuple[Path, Path]] = []
        try:
            _make_folders(created)
            for final, serial, _, data in files:
                temps.append((write_temp(final, data, tag=serial, durable=False), final))
            with store.ledger.write():
                _commit(store.ledger, issuer, planned, records, now, action, in_transaction)
        except BaseException:
            _undo(temps, created)
            journal.finish()
            raise
        # Committed: the certificates exist. Put the files in place; if this is cut short, the journal stays
        # and the files are finished from the ledger.
        for temp, final in temps:
            os.replace(temp, final)
        for folder in folders:
            fsync_dir(folder)
        journal.finish()
    others: dict[str, list[tuple[str, str]]] = {}
    for final, serial, role, _ in files:
        if role.startswith("chain-"):
            others.setdefault(serial, []).append((role[len("chain-"):], str(final)))
    return [Issued(record, tuple(item.request.notes), tuple(others.get(record.serial, ())))
            for record, item in zip(records, planned, strict=True)]


def _records_and_files(
    issuer: Issuer, planned: Sequence[PlannedCertificate], certs: list["x509.Certificate"], now: datetime,
    chain_bytes: bytes, channel: str,
) -> tuple[list[IssuedCertificate], list[tuple[Path, str, str, bytes]]]:
    """The ledger record of each certificate, and its three files: ``(final path, serial, role, content)``."""
    from cryptography.hazmat.primitives.serialization import Encoding

    who, issued_at = actor(), now.replace(microsecond=0)
    records: list[IssuedCertificate] = []
    files: list[tuple[Path, str, str, bytes]] = []
    absolute = {folder: folder.absolute() for folder in {item.cert_path.parent for item in planned
                                                         if item.cert_path is not None}}
    for item, cert in zip(planned, certs, strict=True):
        serial = serial_hex(cert.serial_number)
        leaf = cert.public_bytes(Encoding.PEM)
        paths: dict[str, str | None] = {"cert": None, "chain": None, "fullchain": None}
        for role, final, data in (("cert", item.cert_path, leaf), ("chain", item.chain_path, chain_bytes),
                                  ("fullchain", item.fullchain_path, leaf + chain_bytes)):
            if final is not None:
                paths[role] = str(absolute[final.parent] / final.name)
                files.append((Path(str(paths[role])), serial, role, data))
        request = item.request
        records.append(IssuedCertificate(
            id=0, serial=serial, issuer_id=issuer.id, profile=request.profile.name,
            subject=request.subject.rfc4514_string(), sans=tuple(entry.value for entry in request.sans),
            eku=tuple(request.profile.eku), key_type=request.key_algorithm, key_size=str(request.key_param),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            status=CertificateStatus.VALID, fingerprint_sha256=fingerprint(cert), issued_by=who,
            issued_at=issued_at, pem=leaf.decode(), cert_path=paths["cert"], chain_path=paths["chain"],
            fullchain_path=paths["fullchain"], csr_sha256=request.csr_sha256, csr_der=item.csr_der,
            requested_eku=tuple(request.requested_eku), replaces=item.replaces, channel=channel,
        ))
    return records, files


def chain_file_for_root(chain_path: Path, root_name: str) -> Path:
    """``expc.chain.pem`` -> ``expc.chain-root-1.pem``: the chain file for peers that trust only ``root_name``."""
    name = chain_path.name
    stem = name[: -len(".chain.pem")] if name.endswith(".chain.pem") else chain_path.stem
    return chain_path.with_name(f"{stem}.chain-{root_name}.pem")


def _other_root_chains(store: Store, issuer: Issuer, planned: Sequence[PlannedCertificate],
                       records: list[IssuedCertificate], now: datetime) -> list[tuple[Path, str, str, bytes]]:
    """During a root rollover, beside each ``.chain.pem``: a chain per other root generation that cross-signed
    this one (``expc.chain-root-1.pem``), for the peers that trust only that root: the issuing CA and the
    cross-certificate, no self-signed root. Derived from the ledger, so rewritten like the other files."""
    others = cas.chains_to_other_roots(store.ledger, issuer.ca, now)
    files: list[tuple[Path, str, str, bytes]] = []
    for record in records:
        if not record.chain_path:
            continue  # delivered over a protocol (SCEP, EST): no files
        for root_name, pem in others.items():
            final = chain_file_for_root(Path(record.chain_path or ""), root_name)
            check_writable_target(final, overwrite=True)
            files.append((final, record.serial, f"chain-{root_name}", pem.encode()))
    return files


def _commit(ledger: Ledger, issuer: Issuer, planned: Sequence[PlannedCertificate], records: list[IssuedCertificate],
            now: datetime, action: str, in_transaction: InTransaction | None) -> None:
    """Inside the write transaction: the certificates and their events (and the caller's own change)."""
    # The passphrase prompt may have taken a while: the CA must still be the one that issues.
    if cas.by_id(ledger, issuer.id).status is not CAStatus.ACTIVE:
        raise LedgerError(f"CA {issuer.name}: no longer the active issuing CA (rotated or revoked meanwhile); "
                          "nothing issued, run the command again")
    certificates.insert_many(ledger, records)
    items: list[tuple[events.Details, str | None]] = []
    for record, item in zip(records, planned, strict=True):
        details: dict[str, object] = {"profile": record.profile, "subject": record.subject, "issuer": issuer.name,
                                      "csr_sha256": record.csr_sha256, "notes": item.request.notes}
        if item.replaces is not None:
            details["replaces"] = item.replaces
        if record.channel != "cli":
            details["channel"] = record.channel
        items.append((details, record.serial))
    events.record_many(ledger, now, action, items)
    if in_transaction is not None:
        in_transaction(ledger, records)


def _make_folders(created: list[Path]) -> None:
    for folder in sorted(created, key=lambda f: len(f.parts)):
        try:
            folder.mkdir(mode=0o755)  # never group- or world-writable, whatever the umask
        except OSError as exc:
            raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror})") from None


def _undo(temps: list[tuple[Path, Path]], created: list[Path]) -> None:
    """Nothing committed: remove the temporary files and the folders made for them (the location as it was)."""
    for temp, _ in temps:
        temp.unlink(missing_ok=True)
    for folder in sorted(created, key=lambda f: len(f.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _missing_folders(folders: set[Path]) -> list[Path]:
    """Every folder (and missing parent) that has to be created for ``folders``."""
    missing: set[Path] = set()
    for folder in folders:
        for candidate in (folder, *folder.parents):
            if candidate.exists() or candidate.is_symlink():
                break
            missing.add(candidate)
    return sorted(missing)
