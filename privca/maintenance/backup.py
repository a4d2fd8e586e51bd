"""Encrypted backups of a store, taken while it is in use, and restoring them into a new store.

An archive holds a consistent copy of the ledger (SQLite's online backup API, inside one read transaction, so a
batch being issued is either wholly in it or not at all), the encrypted CA key files, the store's own profiles
and any other file in the store, plus a manifest with each file's SHA-256. Keys referenced by the ledger are
written before the ledger row that names them commits and are never deleted, so they are always there.

File format (version 1), all integers unsigned::

    offset  size  field
    0       8     magic "PRIVCABK"
    8       1     format version (1)
    9       1     scrypt cost, log2 N (15)
    10      1     scrypt block size r (8)
    11      1     scrypt parallelism p (1)
    12      16    scrypt salt
    28      12    AES-GCM nonce
    40      n     AES-256-GCM ciphertext of a gzip-compressed POSIX tar
    40+n    16    AES-GCM tag; the 40 header bytes are authenticated as associated data

The key is scrypt(passphrase, salt, N, r, p) with 32 bytes of output (RFC 7914); the passphrase is the CA
passphrase, checked against the CA keys before anything is written. A wrong passphrase and an altered archive
look the same (the tag does not verify), and nothing is restored from either.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from privca.version import __version__
from privca.errors import BackupError, OutputError, StoreError
from privca.common.fsutil import (TEMP_MARK, atomic_write, check_writable_target, ensure_private_dir, fsync_dir,
                                  read_regular_file)
from privca.ledger import cas, certificates, events
from privca.ledger.records import Json, iso
from privca.ledger.store import LEDGER_FILE, Store

if TYPE_CHECKING:
    from privca.keys.material import Passphrase

MAGIC = b"PRIVCABK"
FORMAT_VERSION = 1
HEADER_SIZE = 40
TAG_SIZE = 16
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB, ~0.1 s: one derivation per backup or restore
MANIFEST = "MANIFEST.json"
# Never archived: the live ledger files (the snapshot stands in for them) and in-flight write journals.
_SKIPPED_TOP = {LEDGER_FILE, f"{LEDGER_FILE}-wal", f"{LEDGER_FILE}-shm", "pending", "README.md", ".gitignore"}


def _derive_key(passphrase: "Passphrase", salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(passphrase.reveal())


# --- backup ---------------------------------------------------------------------------------------------------

def _check_passphrase(store: Store, passphrase: "Passphrase") -> None:
    """A backup nobody can open is worse than none: the passphrase must open the CA keys first."""
    from privca.keys.material import load_private_key
    from privca.keys.keystore import is_token_ref

    for ca in cas.all_cas(store.ledger):
        if not is_token_ref(ca.key_ref):
            load_private_key(store.path / ca.key_ref, passphrase)


def _snapshot(store: Store) -> tuple[bytes, dict[str, bytes], Json]:
    """The ledger (as database bytes) and the store's other files, as of one moment."""
    ledger = store.ledger
    with ledger.snapshot():  # a read transaction: the copy and the counts come from one moment
        counts: Json = {
            "cas": len(cas.all_cas(ledger)),
            "certificates": certificates.count(ledger),
            "events": events.count(ledger),
        }
        head = events.head_hash(ledger)
        counts["events_head"] = None if head == events.GENESIS_HASH else head
        database = ledger.serialize()
        files = _store_files(store)
    return database, files, counts


def _store_files(store: Store) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(store.path):
        relative_root = Path(root).relative_to(store.path)
        if relative_root == Path("."):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_TOP]
        for name in names:
            relative = relative_root / name
            if str(relative) in _SKIPPED_TOP or TEMP_MARK in name:
                continue
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue  # verify reports those; an archive holds regular files only
            files[relative.as_posix()] = path.read_bytes()
    return files


def _tar(members: dict[str, bytes], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, mtime
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=mtime)


def _encrypt(plain: bytes, passphrase: "Passphrase") -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt, nonce = os.urandom(16), os.urandom(12)
    header = MAGIC + bytes([FORMAT_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P]) + salt + nonce
    key = _derive_key(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    # The streaming interface: AESGCM.encrypt() refuses inputs over 2 GiB, a ledger of a million certificates.
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(header)
    body = encryptor.update(plain) + encryptor.finalize()
    return header + body + encryptor.tag


def backup_store(store: Store, target: Path, passphrase: "Passphrase", *, now: datetime, force: bool = False
                 ) -> dict[str, Any]:
    """Write an encrypted archive of ``store`` to ``target`` (mode 0600); return what it holds."""
    store.require_ca()
    check_writable_target(target, overwrite=force)
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent}: no such folder")
    _check_passphrase(store, passphrase)
    database, files, counts = _snapshot(store)
    members = {LEDGER_FILE: database, **files}
    manifest = {
        "format": FORMAT_VERSION,
        "privca": __version__,
        "created_at": iso(now),
        "store": str(store.path.absolute()),
        **counts,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    members[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    blob = _encrypt(_tar(members, int(now.timestamp())), passphrase)
    atomic_write(target, blob, mode=0o600, overwrite=force)
    fsync_dir(target.parent)
    summary = {"file": str(target), "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
               **{k: manifest[k] for k in ("created_at", "cas", "certificates", "events", "events_head")},
               "files": sorted(members)}
    ledger = store.ledger
    with ledger.write():
        events.record(ledger, now, "backup", {"file": str(target.absolute()), "sha256": summary["sha256"],
                                           "certificates": counts["certificates"], "events": counts["events"]})
    return summary


# --- restore --------------------------------------------------------------------------------------------------

MAX_ARCHIVE_BYTES = 16 << 30


def _decrypt(archive: Path, passphrase: "Passphrase") -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    blob = read_regular_file(archive, MAX_ARCHIVE_BYTES, BackupError)
    if len(blob) > MAX_ARCHIVE_BYTES:
        raise BackupError(f"{archive}: larger than 16 GiB; not a privca backup")
    if len(blob) < HEADER_SIZE + TAG_SIZE or not blob.startswith(MAGIC):
        raise BackupError(f"{archive}: not a privca backup (no PRIVCABK header)")
    version, log2_n, r, p = blob[8], blob[9], blob[10], blob[11]
    if version != FORMAT_VERSION:
        raise BackupError(f"{archive}: backup format {version}; this privca reads format {FORMAT_VERSION}")
    if not (14 <= log2_n <= SCRYPT_LOG2_N and 1 <= r <= SCRYPT_R and 1 <= p <= SCRYPT_P):
        # Checked before any derivation: parameters above what privca writes would make the derivation itself
        # the attack (a 40-byte header asking for N=2^20, r=16 cost 16 s and 2 GiB before "cannot decrypt").
        raise BackupError(f"{archive}: key-derivation parameters (scrypt N=2^{log2_n}, r={r}, p={p}) above what "
                          f"privca writes (N=2^{SCRYPT_LOG2_N}, r={SCRYPT_R}, p={SCRYPT_P}); not a privca backup")
    header, body, tag = blob[:HEADER_SIZE], blob[HEADER_SIZE:-TAG_SIZE], blob[-TAG_SIZE:]
    key = _derive_key(passphrase, header[12:28], log2_n, r, p)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(header[28:40], tag)).decryptor()
    decryptor.authenticate_additional_data(header)
    try:
        return decryptor.update(body) + decryptor.finalize()
    except InvalidTag:
        raise BackupError(f"{archive}: cannot decrypt: wrong passphrase, or the archive was altered or "
                          "truncated") from None


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name
            and "\x00" not in name and len(path.parts) <= 4 and path.parts[0] not in ("pending",)
            and all(part.isprintable() and not part.startswith("-") for part in path.parts))


def _members(plain: bytes, archive: Path) -> dict[str, bytes]:
    """The archive's files, refusing anything but plain relative regular files, then checked against the manifest."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(plain)), mode="r:") as tar:
            for member in tar.getmembers():
                if not member.isreg():
                    raise BackupError(f"{archive}: holds {member.name!r}, which is not a regular file; refusing it")
                if not _safe_member_name(member.name) or member.name in files:
                    raise BackupError(f"{archive}: holds an unsafe or repeated path {member.name!r}; refusing it")
                handle = tar.extractfile(member)
                files[member.name] = handle.read() if handle is not None else b""
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile) as exc:
        raise BackupError(f"{archive}: the archive inside is damaged ({exc})") from None
    try:
        manifest = json.loads(files.pop(MANIFEST))
        listed = manifest["files"]
    except (KeyError, ValueError, TypeError):
        raise BackupError(f"{archive}: has no readable manifest; not a privca backup") from None
    if set(listed) != set(files) or LEDGER_FILE not in files:
        raise BackupError(f"{archive}: its files do not match its manifest")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise BackupError(f"{archive}: {name} does not match its manifest checksum")
    return files


def _check_target(store: Store) -> None:
    if store.path.is_symlink() or (store.path.exists() and not store.path.is_dir()):
        raise StoreError(f"{store.path}: exists and is not a folder; choose a new --store for the restore")
    if store.path.is_dir() and any(store.path.iterdir()):
        what = "holds a CA" if store.is_initialised() else "is not empty"
        raise StoreError(f"{store.path}: {what}; privca restore never overwrites a store (choose a new --store)")


def restore_store(archive: Path, store: Store, passphrase: "Passphrase", *, now: datetime) -> dict[str, Any]:
    """Restore ``archive`` into the new (missing or empty) folder ``store.path``, verify it, then put it there."""
    from privca.maintenance.verify import verify_store

    _check_target(store)
    files = _members(_decrypt(archive, passphrase), archive)
    if not store.path.parent.is_dir():
        raise StoreError(f"{store.path.parent}: no such folder")
    staging = store.path.parent / f".{store.path.name}{TEMP_MARK}restore-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        ensure_private_dir(staging)
        for name, data in files.items():
            target = staging / name
            for folder in reversed(target.relative_to(staging).parents[:-1]):
                ensure_private_dir(staging / folder)
            atomic_write(target, data, mode=0o600)
        restored = Store(staging)
        restored.create()  # the folders an archive does not carry (pending/) and the ledger's WAL mode
        try:
            # The certificate files the ledger names (and their folders) are not part of a store, and may not
            # exist on this machine; everything in the store itself must be whole.
            report = verify_store(restored, passphrase=passphrase, skip=["files", "leftovers"])
            if not report.ok:
                raise BackupError(f"{archive}: the restored store does not verify; nothing was restored",
                                  problems=[f.text() for f in report.findings[:10]])
            summary = {"store": str(store.path), "cas": report.checked.get("cas", 0),
                       "certificates": report.checked.get("certificates", 0), "events": report.checked.get("events", 0),
                       "events_head": report.events_head}
            ledger = restored.ledger
            with ledger.write():
                events.record(ledger, now, "restore", {"archive": str(archive.absolute()),
                                                     "certificates": summary["certificates"]})
        finally:
            restored.close()
        _check_target(store)  # still free?
        if store.path.is_dir():
            store.path.rmdir()
        os.rename(staging, store.path)
        fsync_dir(store.path.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary

