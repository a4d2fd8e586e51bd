"""``privca verify``: prove the store is whole, or name what is wrong with it.

Each check is a small generator of findings, registered in ``CHECKS`` under a name that ``--skip`` accepts:

- ``cas``          every CA row's certificate parses and matches its serial, subject and fingerprint, and is signed
                   by its parent (a root by itself);
- ``certificates`` every certificate row's PEM parses and matches its serial, subject, validity and fingerprint,
                   and its signature verifies against the issuing CA row's certificate;
- ``keys``         every CA key decrypts and matches its CA certificate (needs the passphrase);
- ``crl``          CRL numbers never go backwards;
- ``events``       the events log is an unbroken hash chain; every certificate has an event naming it (its issue)
                   and every serial an event names is in the ledger, so an edited or deleted row is detected and
                   named;
- ``rows``         every state row (certificates, CAs, CRLs, cross-certificates, enrollment) is what the last event
                   that touched it recorded (privca/ledger/rows.py): a row edited, added or deleted outside privca
                   is named, with the columns that changed;
- ``seals``        every seal (the head of the events log signed by a CA key, privca/ledger/chain.py) verifies with
                   its CA's certificate, that CA chains by signature to a root in the ledger (whose fingerprint the
                   report gives: compare it with what your peers trust), and the event at its count has the hash it
                   signed; an event that says it was sealed has its seal; events recorded after the last seal are
                   listed as notes;
- ``permissions``  the store, its folders, the ledger and the keys are owner-only;
- ``leftovers``    no interrupted write left a journal or a temporary file behind, and no CA key file is there
                   that no CA uses;
- ``files``        every certificate file the ledger names that is still there holds what the ledger says (a
                   missing one is a note: exported files get moved).

``repair=True`` first finishes or undoes interrupted writes (privca/ledger/journal.py) and removes group/other access,
then checks. Findings are facts, never exceptions: a damaged store is reported, not crashed on.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from privca.common.serials import ledger_serial, serial_text
from privca.common.fsutil import TEMP_MARK, writer_alive
from privca.ledger import cas, certificates, events, proof, rows
from privca.ledger.chain import ROWS, SEALED
from privca.ledger.db import Ledger
from privca.ledger.chain import GENESIS_HASH
from privca.ledger.events import ISSUING_ACTIONS, expected_hash
from privca.ledger.records import CA, Event, IssuedCertificate, Json, iso
from privca.rules import chain as chain_rules
from privca.rules.chain import FileKind

if TYPE_CHECKING:
    from cryptography import x509

    from privca.keys.material import Passphrase
    from privca.keys.keystore import CASecrets
    from privca.ledger.store import Store


@dataclass
class Finding:
    check: str
    subject: str  # what the finding is about: "certificate 3f2a", "event #12", a path
    problem: str

    def text(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass
class Report:
    store: str
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)  # worth knowing, not a problem: the store is still whole
    repaired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    events_head: str = GENESIS_HASH
    #: The events the newest valid seal vouches for (#1 to #sealed_events), and those recorded after it.
    sealed_events: int = 0
    unsealed_events: int = 0
    #: The roots the valid seals chain to: name -> SHA-256 fingerprint of its certificate.
    seal_roots: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> Json:
        return {
            "store": self.store,
            "ok": self.ok,
            "checked": dict(self.checked),
            "skipped": list(self.skipped),
            "repaired": list(self.repaired),
            "events_head": self.events_head,
            "seals": {"sealed_events": self.sealed_events, "unsealed_events": self.unsealed_events,
                      "roots": [{"name": name, "fingerprint_sha256": fp} for name, fp in self.seal_roots.items()]},
            "findings": [{"check": f.check, "subject": f.subject, "problem": f.problem} for f in self.findings],
            "notes": [{"check": f.check, "subject": f.subject, "note": f.problem} for f in self.notes],
        }


@dataclass
class Context:
    """What every check may use: the store, its ledger, the CA certificates, and what the caller gave."""

    store: "Store"
    ledger: Ledger
    secrets: "CASecrets | None"
    report: Report
    progress: Callable[[int], None] | None
    cas: list[CA] = field(default_factory=list)
    ca_certs: dict[int, "x509.Certificate"] = field(default_factory=dict)
    stray_keys: list[Path] = field(default_factory=list)
    #: Row key -> (digest, event id, event serial) of the last event that recorded the row (walked once).
    recorded_rows: dict[str, tuple[str, int, str | None]] | None = None

    def load_cas(self) -> None:
        """The CAs, and their readable certificates by CA id (the "cas" check reports the unreadable ones)."""
        self.cas = cas.all_cas(self.ledger)
        for ca in self.cas:
            cert = _load_pem_cert(ca.pem)
            if not isinstance(cert, str):
                self.ca_certs[ca.id] = cert

    def count(self, what: str, n: int = 1) -> None:
        self.report.checked[what] = self.report.checked.get(what, 0) + n


Check = Callable[[Context], Iterator[Finding]]


# --- CAs and certificates -------------------------------------------------------------------------------------

def _load_pem_cert(pem: object) -> "x509.Certificate | str":
    """The certificate, or why it cannot be read."""
    from cryptography import x509

    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        return "the stored PEM is not a CERTIFICATE block"
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except Exception as exc:  # cryptography raises ValueError and friends for every malformed encoding
        return f"the stored PEM does not parse ({_short(exc)})"


def _short(exc: Exception) -> str:
    from privca.common.names import printable

    return printable(str(exc) or type(exc).__name__, 120)


def _record_mismatches(record: CA | IssuedCertificate, cert: "x509.Certificate") -> Iterator[str]:
    from privca.authority.ca import fingerprint, serial_hex

    if serial_hex(cert.serial_number) != record.serial:
        yield (f"the ledger says serial {serial_text(record.serial)} but the certificate has "
               f"{serial_text(cert.serial_number)}")
    if cert.serial_number <= 0:
        yield "the certificate's serial number is not positive (RFC 5280 4.1.2.2)"
    if fingerprint(cert) != record.fingerprint_sha256:
        yield "the stored SHA-256 fingerprint does not match the certificate"
    try:
        subject = cert.subject.rfc4514_string()
    except Exception as exc:
        subject = f"<unreadable: {_short(exc)}>"
    if subject != record.subject:
        yield f"the ledger says subject {record.subject!r} but the certificate has {subject!r}"
    if cert.not_valid_after_utc != record.not_after:
        yield (f"the ledger says not after {iso(record.not_after)} but the certificate says "
               f"{iso(cert.not_valid_after_utc)}")


def _signature_problem(cert: "x509.Certificate", issuer: "x509.Certificate") -> str | None:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception as exc:  # InvalidSignature, ValueError (issuer name mismatch), TypeError (key type)
        return f"the signature does not verify against its issuing CA ({_short(exc) or 'invalid signature'})"
    return None


def check_cas(ctx: Context) -> Iterator[Finding]:
    if not ctx.cas:
        yield Finding("cas", str(ctx.store.path), "the ledger holds no CA")
    for ca in ctx.cas:
        ctx.count("cas")
        cert = _load_pem_cert(ca.pem)
        if isinstance(cert, str):
            yield Finding("cas", f"CA {ca.name}", cert)
            continue
        for problem in _record_mismatches(ca, cert):
            yield Finding("cas", f"CA {ca.name}", problem)
    for ca in ctx.cas:
        loaded = ctx.ca_certs.get(ca.id)
        if loaded is None:
            continue
        parent = ctx.ca_certs.get(ca.parent_id) if ca.parent_id is not None else loaded
        if parent is None:
            yield Finding("cas", f"CA {ca.name}", f"its parent CA #{ca.parent_id} is missing or unreadable")
        elif bad_signature := _signature_problem(loaded, parent):
            yield Finding("cas", f"CA {ca.name}", bad_signature)


def check_certificates(ctx: Context) -> Iterator[Finding]:
    pending = 0
    for record in certificates.every(ctx.ledger):
        ctx.count("certificates")
        subject = f"certificate {serial_text(record.serial)}"
        cert = _load_pem_cert(record.pem)
        pending += 1
        if ctx.progress is not None and pending == 1000:
            ctx.progress(pending)
            pending = 0
        if isinstance(cert, str):
            yield Finding("certificates", subject, cert)
            continue
        for problem in _record_mismatches(record, cert):
            yield Finding("certificates", subject, problem)
        issuer = ctx.ca_certs.get(record.issuer_id)
        if issuer is None:
            yield Finding("certificates", subject, f"its issuing CA #{record.issuer_id} is missing or unreadable")
        elif bad_signature := _signature_problem(cert, issuer):
            yield Finding("certificates", subject, bad_signature)
    if ctx.progress is not None and pending:
        ctx.progress(pending)


# --- keys -----------------------------------------------------------------------------------------------------

def check_keys(ctx: Context) -> Iterator[Finding]:
    """Each CA key opens (a key file with the passphrase, a token key with the PIN) and matches its certificate."""
    from cryptography import x509

    from privca.errors import PrivcaError
    from privca.keys.material import load_private_key
    from privca.keys.keystore import describe_key_ref, is_token_ref, load_ca_key, token_of

    if ctx.secrets is None:
        ctx.report.skipped.append("keys")
        return
    for ca in ctx.cas:
        ref = ca.key_ref
        ctx.count("keys")
        # A secret that was not given, a PIN the token refuses or a token that is not there is an error of this run
        # (raised once: HSMs lock the user after a few wrong PINs), not a finding about the store.
        if is_token_ref(ref):
            from privca.keys.hsm import open_token

            token = token_of(ca, ctx.secrets)
            assert token is not None  # a token reference always names its token
            open_token(token.module, token.label, ctx.secrets.get_pin)
        else:
            passphrase = ctx.secrets.get_passphrase()
        try:
            if is_token_ref(ref):
                key = load_ca_key(ctx.store, ca, ctx.secrets)
            else:
                # Full validation here (trusted=False): verify is where a tampered key file must be caught.
                key = load_private_key(ctx.store.path / ref, passphrase, trusted=False)
        except PrivcaError as exc:
            yield Finding("keys", f"CA {ca.name}", exc.message)
            continue
        loaded = ctx.ca_certs.get(ca.id)
        if loaded is None:
            continue  # "cas" reports the unreadable certificate
        if key.public_key() != loaded.public_key():
            yield Finding("keys", f"CA {ca.name}", f"{describe_key_ref(ctx.store, ref)}: the key does not match "
                          "the CA certificate")


def secrets_needed(store: "Store") -> list[str]:
    """Which secrets checking the CA keys takes: "passphrase" (key files), "pin" (token keys), or both."""
    from privca.keys.keystore import is_token_ref

    refs = cas.key_refs(store.require_ca())
    return [name for name, needed in (("passphrase", any(not is_token_ref(r) for r in refs)),
                                      ("pin", any(is_token_ref(r) for r in refs))) if needed]


# --- CRL numbers ----------------------------------------------------------------------------------------------

def check_crl_numbers(ctx: Context) -> Iterator[Finding]:
    """CRL numbers are monotonic (RFC 5280 5.2.3): in the CA rows, and along the CRL events of each CA."""
    current = {}
    for ca in ctx.cas:
        ctx.count("crl_numbers")
        current[ca.name] = ca.crl_number
        if ca.crl_number < 0:
            yield Finding("crl", f"CA {ca.name}", f"CRL number {ca.crl_number!r} is not a whole number >= 0")
    last: dict[str, tuple[int, int]] = {}
    for event in events.mentioning(ctx.ledger, "crl_number"):
        name, number = event.details.get("ca"), event.details.get("crl_number")
        if not isinstance(name, str) or not isinstance(number, int):
            continue
        if name in last and number <= last[name][1]:
            yield Finding("crl", f"event #{event.id}", f"CRL number {number} of CA {name} does not go above "
                          f"{last[name][1]} (event #{last[name][0]})")
        last[name] = (event.id, number)
    for name, (event_id, number) in last.items():
        if name in current and current[name] < number:
            yield Finding("crl", f"CA {name}", f"CRL number {current[name]} went backwards from {number} "
                          f"(event #{event_id})")


# --- events ---------------------------------------------------------------------------------------------------

def check_events(ctx: Context) -> Iterator[Finding]:
    prev_hash, expected_id = GENESIS_HASH, 1
    issued: set[str] = set()  # serials an issue or renew event put on record
    named: set[str] = set()  # serials any event names (revocations, rotations, ...)
    recorded: dict[str, tuple[str, int, str | None]] = {}
    for event in events.every(ctx.ledger):
        ctx.count("events")
        _note_rows(event, recorded)
        name = f"event #{event.id}"
        if event.id != expected_id:
            missing = f"#{expected_id}" if event.id == expected_id + 1 else f"#{expected_id} to #{event.id - 1}"
            yield Finding("events", f"event {missing}", "deleted from the events log")
        if event.prev_hash != prev_hash:
            yield Finding("events", name, "does not follow the event before it (an event was deleted or edited)")
        if expected_hash(event) != event.hash:
            yield Finding("events", name, f"was edited after it was recorded ({event.action} "
                          f"{serial_text(event.serial) if event.serial else ''} at {event.stored_at})"
                          .replace(" )", ")"))
        if event.serial:
            named.add(ledger_serial(event.serial))
            if event.action in ISSUING_ACTIONS:
                issued.add(event.serial)
        prev_hash, expected_id = event.hash, event.id + 1
    ctx.report.events_head = prev_hash
    ctx.recorded_rows = recorded
    leaves = certificates.serials(ctx.ledger)
    on_record = leaves | cas.serials(ctx.ledger)
    for serial in sorted(leaves - issued):
        yield Finding("events", f"certificate {serial_text(serial)}", "has no issue event (the event was deleted, or the row added "
                      "behind privca's back)")
    for serial in sorted(named - on_record):
        yield Finding("events", f"certificate {serial_text(serial)}", "was issued (the events log says so) but its ledger row is "
                      "gone: it can no longer be revoked; restore the ledger from a backup")


def _note_rows(event: Event, recorded: dict[str, tuple[str, int, str | None]]) -> None:
    """Keep the row digests an event carries (the last one of each row wins)."""
    if f'"{ROWS}"' not in event.details_text:
        return
    found = event.details.get(ROWS)
    if not isinstance(found, dict):
        return
    for row_key, digest in found.items():
        if isinstance(digest, str):
            recorded[row_key] = (digest, event.id, event.serial)


def check_rows(ctx: Context) -> Iterator[Finding]:
    """Each state row is what the last event that touched it recorded; none is there that no event recorded, and
    none an event recorded is gone."""
    recorded = ctx.recorded_rows
    if recorded is None:  # the events check was skipped: walk the log for the digests alone
        recorded = {}
        for event in events.mentioning(ctx.ledger, f'"{ROWS}"'):
            _note_rows(event, recorded)
    left = dict(recorded)
    for row_key, names, values in proof.tracked_rows(ctx.ledger):
        ctx.count("rows")
        found = left.pop(row_key, None)
        if found is None:
            yield Finding("rows", proof.describe(ctx.ledger, row_key), "no event records this row: it was added "
                          "behind privca's back (or the event that recorded it was deleted)")
            continue
        digest, event_id, _ = found
        if digest == rows.DELETED:
            yield Finding("rows", proof.describe(ctx.ledger, row_key), f"event #{event_id} recorded its deletion, "
                          "but it is in the ledger: it was put back behind privca's back")
        elif not rows.same(names, values, digest):
            changed = rows.changed_columns(names, values, digest)
            what = f"{', '.join(changed)} changed" if changed else "changed"
            yield Finding("rows", proof.describe(ctx.ledger, row_key), f"{what} since event #{event_id} recorded "
                          "it, outside privca (edited in the ledger file)")
    for row_key, (digest, event_id, serial) in sorted(left.items(), key=lambda item: item[1][1]):
        if digest != rows.DELETED:
            yield Finding("rows", proof.describe(ctx.ledger, row_key, serial), f"recorded by event #{event_id} but "
                          "gone from the ledger: deleted behind privca's back; restore the ledger from a backup")


# --- seals ----------------------------------------------------------------------------------------------------

#: How many events recorded after the last seal are listed one by one (the rest are counted).
UNSEALED_SHOWN = 20
#: Actions recorded only by commands that unlock a CA key, and so always sealed: one that no seal covers was forged
#: (or its seal deleted). A baseline is recorded only when a store from before seals is upgraded.
SEALING_ACTIONS = ("init", "issue", "renew", "crl", "rotate-root", "rotate-intermediate")


def _root_of(ctx: Context, ca: CA) -> tuple[CA | None, str | None]:
    """The root ``ca`` chains to by signature (each certificate verified with its parent's, the root with its own
    key), or why it does not."""
    by_id = {item.id: item for item in ctx.cas}
    current, seen = ca, set()
    while True:
        seen.add(current.id)
        cert = ctx.ca_certs.get(current.id)
        parent = by_id.get(current.parent_id) if current.parent_id is not None else current
        parent_cert = ctx.ca_certs.get(parent.id) if parent is not None else None
        if cert is None or parent is None or parent_cert is None:
            return None, f"CA {current.name}'s certificate or its parent's is missing or unreadable"
        if _signature_problem(cert, parent_cert) is not None:
            return None, f"CA {current.name}'s certificate is not signed by {parent.name}"
        if parent is current:
            return current, None
        if parent.id in seen:
            return None, f"CA {current.name}'s parents loop"
        current = parent


def check_seals(ctx: Context) -> Iterator[Finding]:
    from privca.ledger.proof import all_seals

    seals = all_seals(ctx.ledger)
    last = events.last_id(ctx.ledger)
    hashes = events.hashes_at(ctx.ledger, {seal.count for seal in seals})
    by_id = {ca.id: ca for ca in ctx.cas}
    sealed_upto = highest = 0
    for seal in seals:
        ctx.count("seals")
        name = f"seal #{seal.id}"
        ca, cert = by_id.get(seal.ca_id), ctx.ca_certs.get(seal.ca_id)
        if ca is None or cert is None:
            yield Finding("seals", name, f"made with CA #{seal.ca_id}, which is not in the ledger (or its certificate "
                          "is unreadable)")
            continue
        if seal.ca_fingerprint != ca.fingerprint_sha256 or not seal.verifies_with(cert.public_key()):
            yield Finding("seals", name, f"its signature does not verify with CA {ca.name}'s certificate: the seal was "
                          "forged or edited (or the CA's certificate replaced)")
            continue
        root, broken = _root_of(ctx, ca)
        if root is None:
            yield Finding("seals", name, f"CA {ca.name} does not chain to a root in the ledger ({broken})")
            continue
        if seal.count < highest:
            yield Finding("seals", name, f"vouches for {seal.count} events, fewer than a seal before it ({highest}): "
                          "the seals were reordered")
        highest = max(highest, seal.count)
        if seal.count > last:
            yield Finding("seals", name, f"CA {ca.name} sealed {seal.count} events at {seal.at}, but the log ends at "
                          f"event #{last}: events #{last + 1} to #{seal.count} were deleted")
        elif hashes.get(seal.count) != seal.head:
            yield Finding("seals", name, f"event #{seal.count} is not the one CA {ca.name} sealed at {seal.at}: the "
                          "events up to it were edited, forged or replaced (their hashes recomputed)")
        else:
            sealed_upto = max(sealed_upto, seal.count)
            ctx.report.seal_roots[root.name] = root.fingerprint_sha256
    counts = {seal.count for seal in seals}
    for event in events.mentioning(ctx.ledger, f'"{SEALED}":'):
        marker = event.details.get(SEALED)
        if isinstance(marker, int) and event.id not in counts:
            ca_name = by_id[marker].name if marker in by_id else f"#{marker}"
            yield Finding("seals", f"event #{event.id}", f"its command sealed the ledger with CA {ca_name}, but that "
                          "seal is gone (deleted)")
    ctx.report.sealed_events = sealed_upto
    tail = list(events.after(ctx.ledger, sealed_upto))
    ctx.report.unsealed_events = len(tail)
    # Before a store's first seal (made by an older privca, just upgraded) its old events are legitimately
    # unsealed, up to the baseline the upgrade recorded; once it has a seal, nothing that always seals may follow it.
    # (Events a seal that failed above claims to cover are reported through that seal.)
    before_seals = max((event.id for event in tail if event.action == "baseline"), default=0) if not sealed_upto else 0
    claimed = max((seal.count for seal in seals), default=0)
    for event in tail:
        if event.id > max(before_seals, claimed) and (event.action in SEALING_ACTIONS or (sealed_upto and
                                                                            event.action == "baseline")):
            what = f"{event.action} {serial_text(event.serial)}" if event.serial else event.action
            yield Finding("seals", f"event #{event.id}", f"{what} at {event.stored_at}: this action is always sealed "
                          "with the CA key that made it, but no seal covers it: forged (or its seal deleted)")
    if not seals and ctx.cas:
        ctx.report.notes.append(Finding("seals", "events log", "no seal yet (a store made by an older privca): its "
                                        "history is signed from the next command that unlocks a CA key (privca crl)"))
    for event in tail[:UNSEALED_SHOWN]:
        what = f"{event.action} {serial_text(event.serial)}" if event.serial else event.action
        ctx.report.notes.append(Finding("seals", f"event #{event.id}", f"{what} at {event.stored_at}: recorded after "
                                        "the last seal, by a command that unlocks no CA key; not signed yet (check "
                                        "it is yours; the next issue or crl seals it)"))
    if len(tail) > UNSEALED_SHOWN:
        ctx.report.notes.append(Finding("seals", "events log", f"and {len(tail) - UNSEALED_SHOWN} more events after "
                                        "the last seal"))


# --- permissions ----------------------------------------------------------------------------------------------

def _store_paths(store: "Store") -> Iterator[tuple[Path, int]]:
    """Everything in the store with the mode it must not exceed: folders 0700, files 0600."""
    yield store.path, 0o700
    for root, dirs, files in os.walk(store.path):
        for name in dirs:
            yield Path(root) / name, 0o700
        for name in files:
            if Path(root) == store.path and name in ("README.md", ".gitignore"):
                continue  # the checkout's own notes in the default store folder
            yield Path(root) / name, 0o600


def check_permissions(ctx: Context, repair: bool = False) -> Iterator[Finding]:
    for path, allowed in _store_paths(ctx.store):
        try:
            info = path.lstat()
        except OSError:
            continue
        ctx.count("paths")
        if stat.S_ISLNK(info.st_mode):
            yield Finding("permissions", str(path), "is a symbolic link inside the store; replace it with the real file")
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            if repair:
                os.chmod(path, mode & ~0o077)
                ctx.report.repaired.append(f"{path}: removed group/other access (was {mode:04o})")
                continue
            yield Finding("permissions", str(path), f"mode {mode:04o} lets others in; run: chmod go-rwx {path}")
        if info.st_uid != os.getuid():
            yield Finding("permissions", str(path), f"is owned by uid {info.st_uid}, not by you (uid {os.getuid()})")


# --- interrupted writes ---------------------------------------------------------------------------------------

def _ledger_folders(ctx: Context) -> set[Path]:
    return {ctx.store.path, ctx.store.keys_dir, ctx.store.profiles_dir} | certificates.output_folders(ctx.ledger)


def stray_temp_files(ctx: Context) -> list[Path]:
    """Temporary files (fsutil.TEMP_MARK) in the store and in every folder the ledger has written to."""
    found = []
    for folder in sorted(_ledger_folders(ctx)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += [folder / name for name in names if TEMP_MARK in name]
    return sorted(found)


def check_leftovers(ctx: Context) -> Iterator[Finding]:
    from privca.ledger.journal import abandoned_journals

    for journal in abandoned_journals(ctx.store):
        ctx.count("journals")
        yield Finding("leftovers", str(journal), "an interrupted write left this journal; run: privca verify --repair")
    for path in _stray_not_live(ctx):
        yield Finding("leftovers", str(path), "temporary file left by an interrupted write; run: privca verify --repair")
    for path in ctx.stray_keys:
        yield Finding("leftovers", str(path), "a key file that no CA in the ledger uses and no interrupted write "
                      "accounts for; privca never deletes a key on its own: if the ledger was restored from an older "
                      "backup it may belong to a CA made since, otherwise move it out of the store")


def unreferenced_key_files(store: "Store") -> list[Path]:
    """Key files in ``keys/`` that no CA row names and no journal accounts for (the journal of a rotation or init
    that died before its commit is reported, and undone by --repair, on its own).

    Read outside the checks' snapshot in this order: files, journals, CA rows. A key file is saved after its
    journal is written and the journal removed after the CA row commits, so a rotation finishing meanwhile is
    covered by its journal or its row, never reported.
    """
    from privca.ledger.journal import named_files

    files = sorted(store.keys_dir.glob("*.key.pem")) if store.keys_dir.is_dir() else []
    if not files:
        return []
    journaled = {path.absolute() for path in named_files(store)}
    named = cas.key_refs(store.ledger)
    return [path for path in files if f"keys/{path.name}" not in named and path.absolute() not in journaled]


def _stray_not_live(ctx: Context) -> list[Path]:
    """Temporary files that no running privca is writing. Listed before the live journals are read: a file
    written by a command that starts in between is then still covered by that command's journal."""
    from privca.ledger.journal import live_temp_files

    candidates = stray_temp_files(ctx)
    live = live_temp_files(ctx.store)
    return [path for path in candidates if path not in live and path.exists() and not writer_alive(path)]


def repair_leftovers(ctx: Context) -> None:
    """Finish or undo interrupted writes; remove temporary files no journal accounts for."""
    from privca.ledger.journal import recover

    for done in recover(ctx.store):
        verb = "finished from the ledger" if done.direction == "forward" else "undone (never committed)"
        ctx.report.repaired.append(f"{done.journal}: interrupted {done.kind} of {done.files} files {verb}")
    for path in _stray_not_live(ctx):
        path.unlink(missing_ok=True)
        ctx.report.repaired.append(f"{path}: removed a temporary file of an interrupted write")


# --- files ----------------------------------------------------------------------------------------------------

def check_files(ctx: Context) -> Iterator[Finding]:
    """Each file the ledger names holds what the ledger says (only the newest certificate written to a path).

    The files are exports: administrators move them into place on their servers, so a missing one is a note, not
    a problem. A file that is there with other content than the ledger's is a finding: the certificate or chain
    someone relies on is not the one on record.
    """
    chains: dict[int, list[str]] = {}
    options: dict[FileKind, str] = {"cert": "--pem", "chain": "--chain", "fullchain": "--fullchain"}
    for role, option in options.items():
        for record in certificates.newest_per_file(ctx.ledger, role):
            where = {"cert": record.cert_path, "chain": record.chain_path, "fullchain": record.fullchain_path}[role]
            if not where:
                continue
            ctx.count("files")
            if record.issuer_id not in chains:
                chains[record.issuer_id] = _chain_pems(ctx, record.issuer_id)
            expected = chain_rules.file_content(role, record.pem, chains[record.issuer_id])
            path = Path(where)
            try:
                actual = path.read_bytes() if not path.is_symlink() else None
            except OSError:
                ctx.report.notes.append(Finding("files", str(path), f"not there (moved or deleted; certificate "
                                                f"{serial_text(record.serial)}); to write it again: privca show "
                                                f"{serial_text(record.serial)} {option}"))
                continue
            if actual != expected:
                yield Finding("files", str(path), f"does not hold what the ledger has for certificate {serial_text(record.serial)}")


def _chain_pems(ctx: Context, ca_id: int) -> list[str]:
    """The PEM of the CA ``ca_id`` and each parent up to its root as recorded, stopping at a missing parent or a
    loop (which the "cas" check reports)."""
    by_id = {ca.id: ca for ca in ctx.cas}
    parts: list[str] = []
    seen: set[int] = set()
    current: int | None = ca_id
    while current is not None and current not in seen and current in by_id:
        seen.add(current)
        parts.append(by_id[current].pem)
        current = by_id[current].parent_id
    return parts


# --- running the checks ---------------------------------------------------------------------------------------

CHECKS: dict[str, Check] = {
    "cas": check_cas,
    "certificates": check_certificates,
    "keys": check_keys,
    "crl": check_crl_numbers,
    "events": check_events,
    "rows": check_rows,
    "seals": check_seals,
    "permissions": check_permissions,
    "leftovers": check_leftovers,
    "files": check_files,
}


def verify_store(
    store: "Store",
    *,
    passphrase: "CASecrets | Passphrase | None" = None,
    skip: tuple[str, ...] | list[str] = (),
    repair: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Run every check not in ``skip`` and return the findings.

    ``passphrase`` opens the CA keys: the passphrase of key files, or a ``CASecrets`` that also has the token PIN
    (each secret is asked for only if a key needs it); None skips the key check.
    """
    from privca.errors import UsageError
    from privca.keys.keystore import CASecrets

    unknown = [name for name in skip if name not in CHECKS]
    if unknown:
        raise UsageError(f"--skip {unknown[0]}: no such check; choose from {', '.join(CHECKS)}")
    ledger = store.require_ca()
    report = Report(str(store.path), skipped=[name for name in CHECKS if name in skip])
    ctx = Context(store, ledger, None if passphrase is None else CASecrets.of(passphrase), report, progress)
    if repair:
        if "leftovers" not in skip:
            repair_leftovers(ctx)
        if "permissions" not in skip:
            list(check_permissions(ctx, repair=True))
            report.checked.pop("paths", None)
    if "leftovers" not in skip:
        ctx.stray_keys = unreferenced_key_files(store)
    # One read transaction: every check sees the same ledger even while another process issues.
    with ledger.snapshot(), warnings.catch_warnings():
        # cryptography warns about what it still parses (a zero or negative serial); the checks report it.
        warnings.simplefilter("ignore")
        ctx.load_cas()
        for name, check in CHECKS.items():
            if name in skip:
                continue
            report.findings += list(check(ctx))
    return report


def certificate_count(store: "Store") -> int:
    """How many certificates ``verify_store`` will check (for a progress bar)."""
    return certificates.count(store.require_ca())
