"""Write-ahead journals for files written next to a ledger change, and recovery after a crash.

A command that writes files as well as ledger rows (issued and renewed certificates) works in three steps: write each file
under a temporary name, commit the ledger transaction, rename the files into place. A process killed between
those steps leaves temporary files behind, possibly in a folder the ledger never heard of. So before the first
temporary file, the command writes a journal into the store's ``pending/`` folder naming every file it is about
to write, and holds an exclusive lock on that journal until the files are in place.

A journal that nobody holds belongs to a process that died. Recovery (at the start of the next write, and in
``privca verify --repair``) looks at the ledger to decide:

- the ledger has the change (it committed): roll forward: write each file from the ledger, which is the
  source of truth (the temporary copy may be incomplete after a power cut), and remove the temporary file;
- it does not: roll back: remove the temporary files and any folder the command created, and a file the command
  had already put in place before its commit (a CA key file, which must be on disk before the row naming it) if
  it still holds exactly what the entry's ``sha256`` says the command wrote.

Each kind of journal has, in ``KINDS``, the rule that tells from the ledger whether an entry's change committed and
what its file must then contain.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privca.errors import StoreError
from privca.common.fsutil import ensure_private_dir, fsync_dir, temp_name

if TYPE_CHECKING:
    from privca.ledger.store import Store

try:
    import fcntl
except ImportError:  # pragma: no cover - privca's stores live on POSIX systems
    fcntl = None  # type: ignore[assignment]

JOURNAL_SUFFIX = ".json"

ContentFromLedger = Callable[["Store", dict[str, Any], dict[str, Any]], "bytes | None"]


def issued_file_content(store: "Store", journal: dict[str, Any], entry: dict[str, Any]) -> bytes | None:
    """Recovery rule for "issue" journals: what a certificate file holds, from the ledger; None if the
    certificate never committed (or a later certificate has since been written to the same file)."""
    from privca.ledger import cas, certificates
    from privca.rules.chain import file_content

    ledger = store.ledger
    cert = certificates.issued_by(ledger, int(journal["issuer_id"]), str(entry["tag"]))
    if cert is not None and str(entry["role"]).startswith("chain-"):  # a chain for another root (root rollover)
        other = cas.chains_to_other_roots(ledger, cas.by_id(ledger, int(journal["issuer_id"])), None)
        found = other.get(str(entry["role"])[len("chain-"):])
        return found.encode() if found is not None else None
    if cert is None or certificates.file_rewritten_later(ledger, cert.id, str(entry["role"]), str(entry["final"])):
        return None
    role = entry["role"]
    if role not in ("cert", "chain", "fullchain"):
        return None
    return file_content(role, cert.pem, cas.chain_pems(ledger, cas.by_id(ledger, int(journal["issuer_id"]))))


def ca_key_file_content(store: "Store", journal: dict[str, Any], entry: dict[str, Any]) -> bytes | None:
    """Recovery rule for "ca-key" journals: the key file stays (as it is) when a CA row names it; None when the
    run died before its commit, and the file it wrote is then removed."""
    from privca.ledger import cas

    if not cas.names_key(store.ledger, str(entry["key_ref"])):
        return None
    try:
        return Path(entry["final"]).read_bytes()
    except OSError:
        return None


#: kind -> the rule that returns the bytes an entry's file must hold when its change committed, or None when it
#: did not (roll back). Both rules only read the ledger, so they live here, beside the recovery that runs them.
KINDS: dict[str, ContentFromLedger] = {
    "issue": issued_file_content,
    "ca-key": ca_key_file_content,
}


def _rule(kind: str) -> ContentFromLedger | None:
    return KINDS.get(kind)


@dataclass
class Recovery:
    """What recovery did with one journal: ``forward`` (finished from the ledger) or ``back`` (removed)."""

    journal: str
    kind: str
    direction: str
    files: int


class Journal:
    """A journal being written by this process; see ``open_journal``."""

    def __init__(self, path: Path, fd: int, data: dict[str, Any]) -> None:
        self.path, self._fd, self.data = path, fd, data

    def finish(self) -> None:
        """Nothing is left to recover (files in place, or the change undone): remove the journal."""
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        """Let go of the lock; a journal still on disk is then recovered by the next write."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextmanager
def open_journal(store: "Store", kind: str, entries: list[dict[str, Any]], *, created_dirs: list[Path],
                 **facts: Any) -> Iterator[Journal]:
    """Write a locked journal before any temporary file; remove it when the block ends.

    Each entry holds at least ``final`` (the file's real path) and ``tag`` (the temporary name's tag). The caller
    calls ``journal.finish()`` after the renames; if the block raises instead, the caller has already cleaned
    up, and the journal is simply dropped.
    """
    if kind not in KINDS:
        raise ValueError(f"journal kind {kind!r} has no recovery rule")
    folder = store.pending_dir
    ensure_private_dir(folder)
    name = f"{kind}-{os.getpid()}-{os.urandom(4).hex()}"
    data = {"kind": kind, "created_dirs": [str(p) for p in created_dirs], "entries": entries, **facts}
    # Written under a name recovery ignores, locked, then renamed: recovery never sees an unlocked live journal.
    scratch = folder / f".{name}.tmp"
    fd = os.open(scratch, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(data).encode())
        os.fsync(fd)
        final = folder / f"{name}{JOURNAL_SUFFIX}"
        os.replace(scratch, final)
        fsync_dir(folder)
    except BaseException:
        scratch.unlink(missing_ok=True)
        os.close(fd)
        raise
    journal = Journal(final, fd, data)
    try:
        yield journal
    finally:
        journal.release()


def abandoned_journals(store: "Store") -> list[Path]:
    """Journals in the store whose process is gone (nobody holds their lock), including one that died while
    still writing its journal (before any other file)."""
    folder = store.pending_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted([*folder.glob(f"*{JOURNAL_SUFFIX}"), *_dead_scratches(folder)]):
        with _locked(path) as locked:
            if locked:
                found.append(path)
    return found


def _dead_scratches(folder: Path) -> list[Path]:
    """Journals still being written (``.<kind>-<pid>-<random>.tmp``) whose writer process is gone.

    A scratch journal is created and only then locked: between the two, its lock is free although its writer
    is alive. Judging it by its lock alone let another process's recovery delete it in that instant, and the
    writer's rename then failed (2-4 of 800 concurrent single issues ended in FileNotFoundError). The writer's
    process id in the name tells: a scratch of a running process is never touched.
    """
    dead = []
    for path in folder.glob(".*.tmp"):
        pid = path.name[1:-len(".tmp")].rsplit("-", 2)[-2:-1]
        if not (pid and pid[0].isdigit() and _process_alive(int(pid[0]))):
            dead.append(path)
    return dead


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Try to lock a journal without waiting; yields whether this process now holds it (and it still exists)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        yield False
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False  # a live process holds it
                return
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False  # removed meanwhile by whoever finished it
        yield same
    finally:
        os.close(fd)


def live_temp_files(store: "Store") -> set[Path]:
    """The temporary files named by journals that a running privca holds: not leftovers, work in progress."""
    folder = store.pending_dir
    if not folder.is_dir():
        return set()
    live: set[Path] = set()
    for path in folder.glob(f"*{JOURNAL_SUFFIX}"):
        with _locked(path) as abandoned:
            if abandoned:
                continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # finished meanwhile
        live.update(temp_name(Path(e["final"]), e["tag"]) for e in data.get("entries", []))
    return live


def named_files(store: "Store") -> set[Path]:
    """Every file that a journal in the store (live or abandoned) is about to write or has written."""
    folder = store.pending_dir
    named: set[Path] = set()
    for path in folder.glob(f"*{JOURNAL_SUFFIX}") if folder.is_dir() else []:
        try:
            named.update(Path(entry["final"]) for entry in json.loads(path.read_text()).get("entries", []))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue  # finished meanwhile, or unreadable (reported as an abandoned journal)
    return named


def read_journal(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ValueError("not a journal")
        return data
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable journal ({exc}); inspect it, then delete it") from None


def recover(store: "Store") -> list[Recovery]:
    """Finish or undo every abandoned journal in the store; return what was done."""
    folder = store.pending_dir
    if not folder.is_dir():
        return []
    done = []
    for path in sorted(folder.glob(f"*{JOURNAL_SUFFIX}")):
        with _locked(path) as locked:
            if locked:
                done.append(_recover_one(store, path))
    for scratch in _dead_scratches(folder):  # a journal still being written when its process died
        with _locked(scratch) as locked:
            if locked:
                scratch.unlink(missing_ok=True)
    return done


def _recover_one(store: "Store", path: Path) -> Recovery:
    data = read_journal(path)
    rule = _rule(str(data.get("kind")))
    if rule is None:
        raise StoreError(f"{path}: journal of unknown kind {data.get('kind')!r}; a newer privca wrote it")
    contents = [rule(store, data, entry) for entry in data["entries"]]
    committed = any(content is not None for content in contents)
    folders = set()
    for entry, content in zip(data["entries"], contents, strict=True):
        final = Path(entry["final"])
        temp = temp_name(final, entry["tag"])
        if content is not None:
            _finish_file(final, temp, content)
            folders.add(final.parent)
        else:
            temp.unlink(missing_ok=True)
            if entry.get("sha256") and _holds(final, str(entry["sha256"])):
                final.unlink()
                folders.add(final.parent)
    if not committed:
        for folder in sorted(data.get("created_dirs", []), key=len, reverse=True):
            try:
                Path(folder).rmdir()  # only if empty: never remove what someone else put there
            except OSError:
                pass
    for folder in folders:
        fsync_dir(folder)
    path.unlink()
    fsync_dir(path.parent)
    return Recovery(path.name, str(data["kind"]), "forward" if committed else "back", len(data["entries"]))


def _holds(path: Path, sha256: str) -> bool:
    import hashlib

    try:
        return not path.is_symlink() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def _finish_file(final: Path, temp: Path, content: bytes) -> None:
    """Put ``content`` at ``final`` (from the ledger), then drop the temporary copy."""
    from privca.common.fsutil import write_temp

    try:
        current = final.read_bytes() if final.is_file() and not final.is_symlink() else None
    except OSError:
        current = None
    if current != content:
        final.parent.mkdir(parents=True, exist_ok=True)
        fresh = write_temp(final, content, tag="recover")
        os.replace(fresh, final)
    temp.unlink(missing_ok=True)
