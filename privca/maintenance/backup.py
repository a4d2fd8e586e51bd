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
import zlib
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from privca.version import __version__
from privca.errors import BackupError, OutputError, StoreError
from privca.common.fsutil import (TEMP_MARK, atomic_write, check_writable_target, ensure_private_dir, fsync_dir,
                                  open_regular_file)
from privca.ledger import cas, certificates, events
from privca.ledger.chain import GENESIS_HASH
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
        counts["events_head"] = None if head == GENESIS_HASH else head
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
#: Restore reads and writes in pieces of this size, so its memory does not grow with the archive.
CHUNK_BYTES = 1 << 20
#: A store compresses a few times over (PEM text, keys); an archive that inflates beyond this many times its own
#: size plus a margin is a decompression bomb, refused before it fills the disk.
MAX_INFLATION, INFLATION_MARGIN = 32, 256 << 20
MAX_MANIFEST_BYTES = 64 << 20


def _header(handle: BinaryIO, size: int, archive: Path) -> bytes:
    """The 40 header bytes, after the checks that need nothing secret: size, magic, version, KDF bounds."""
    if size > MAX_ARCHIVE_BYTES:
        raise BackupError(f"{archive}: larger than 16 GiB; not a privca backup")
    header = handle.read(HEADER_SIZE)
    if size < HEADER_SIZE + TAG_SIZE or not header.startswith(MAGIC):
        raise BackupError(f"{archive}: not a privca backup (no PRIVCABK header)")
    version, log2_n, r, p = header[8], header[9], header[10], header[11]
    if version != FORMAT_VERSION:
        raise BackupError(f"{archive}: backup format {version}; this privca reads format {FORMAT_VERSION}")
    if not (14 <= log2_n <= SCRYPT_LOG2_N and 1 <= r <= SCRYPT_R and 1 <= p <= SCRYPT_P):
        # Checked before any derivation: parameters above what privca writes would make the derivation itself
        # the attack (a 40-byte header asking for N=2^20, r=16 cost 16 s and 2 GiB before "cannot decrypt").
        raise BackupError(f"{archive}: key-derivation parameters (scrypt N=2^{log2_n}, r={r}, p={p}) above what "
                          f"privca writes (N=2^{SCRYPT_LOG2_N}, r={SCRYPT_R}, p={SCRYPT_P}); not a privca backup")
    return header


def _decrypt_to(archive: Path, passphrase: "Passphrase", plain: Path) -> int:
    """Decrypt ``archive`` piece by piece into the new owner-only file ``plain``; return the archive's size.

    Nothing decrypted is looked at before the GCM tag has verified the whole archive: a wrong passphrase, a
    flipped bit and a truncation are all refused before any of it is unpacked."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    with open_regular_file(archive, BackupError) as handle:
        size = os.fstat(handle.fileno()).st_size
        header = _header(handle, size, archive)
        handle.seek(size - TAG_SIZE)
        tag = handle.read(TAG_SIZE)
        handle.seek(HEADER_SIZE)
        key = _derive_key(passphrase, header[12:28], header[9], header[10], header[11])
        decryptor = Cipher(algorithms.AES(key), modes.GCM(header[28:40], tag)).decryptor()
        decryptor.authenticate_additional_data(header)
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            remaining = size - HEADER_SIZE - TAG_SIZE
            while remaining:
                piece = handle.read(min(CHUNK_BYTES, remaining))
                if not piece:
                    raise BackupError(f"{archive}: cannot decrypt: the archive was truncated while being read")
                out.write(decryptor.update(piece))
                remaining -= len(piece)
            try:
                out.write(decryptor.finalize())
            except InvalidTag:
                raise BackupError(f"{archive}: cannot decrypt: wrong passphrase, or the archive was altered or "
                                  "truncated") from None
    return size


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name
            and "\x00" not in name and len(path.parts) <= 4 and path.parts[0] not in ("pending",)
            and all(part.isprintable() and not part.startswith("-") and not part.startswith(".")
                    for part in path.parts))


def _copy_member(source: IO[bytes], target: Path, budget: int, archive: Path) -> tuple[str, int]:
    """Copy one archive member into ``target`` (new, owner-only) in pieces; its SHA-256 and size."""
    digest, written = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        while piece := source.read(CHUNK_BYTES):
            written += len(piece)
            if written > budget:
                raise BackupError(f"{archive}: unpacks to far more than its own size (a decompression bomb?); "
                                  "refusing it")
            digest.update(piece)
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), written


def _unpack(plain: Path, staging: Path, budget: int, archive: Path) -> dict[str, str]:
    """Unpack the decrypted archive into ``staging`` one member at a time, refusing anything but plain relative
    regular files; then hold every file to the manifest (names and SHA-256). Returns the files' names and sums."""
    sums: dict[str, str] = {}
    manifest: bytes | None = None
    try:
        with tarfile.open(plain, mode="r|gz") as tar:
            for member in tar:
                if not member.isreg():
                    raise BackupError(f"{archive}: holds {member.name!r}, which is not a regular file; refusing it")
                if not _safe_member_name(member.name) or member.name in sums or (
                        member.name == MANIFEST and manifest is not None):
                    raise BackupError(f"{archive}: holds an unsafe or repeated path {member.name!r}; refusing it")
                source = tar.extractfile(member)
                if source is None:
                    continue
                if member.name == MANIFEST:
                    manifest = source.read(MAX_MANIFEST_BYTES + 1)
                    continue
                target = staging / member.name
                for folder in reversed(target.relative_to(staging).parents[:-1]):
                    ensure_private_dir(staging / folder)
                sums[member.name], size = _copy_member(source, target, budget, archive)
                budget -= size
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile, zlib.error) as exc:
        raise BackupError(f"{archive}: the archive inside is damaged ({exc})") from None
    _check_manifest(manifest, sums, archive)
    return sums


def _check_manifest(manifest: bytes | None, sums: dict[str, str], archive: Path) -> None:
    try:
        if manifest is None or len(manifest) > MAX_MANIFEST_BYTES:
            raise ValueError
        listed = json.loads(manifest)["files"]
        if not isinstance(listed, dict):
            raise TypeError
    except (KeyError, ValueError, TypeError):
        raise BackupError(f"{archive}: has no readable manifest; not a privca backup") from None
    if set(listed) != set(sums) or LEDGER_FILE not in sums:
        raise BackupError(f"{archive}: its files do not match its manifest")
    for name, digest in sums.items():
        if digest != listed[name]:
            raise BackupError(f"{archive}: {name} does not match its manifest checksum")


def _check_target(store: Store) -> None:
    if store.path.is_symlink() or (store.path.exists() and not store.path.is_dir()):
        raise StoreError(f"{store.path}: exists and is not a folder; choose a new --store for the restore")
    if store.path.is_dir() and any(store.path.iterdir()):
        what = "holds a CA" if store.is_initialised() else "is not empty"
        raise StoreError(f"{store.path}: {what}; privca restore never overwrites a store (choose a new --store)")


def restore_store(archive: Path, store: Store, passphrase: "Passphrase", *, now: datetime) -> dict[str, Any]:
    """Restore ``archive`` into the new (missing or empty) folder ``store.path``, verify it, then put it there.

    The archive is decrypted and unpacked in pieces (memory stays flat whatever its size) into a hidden staging
    folder beside the target; only a staged store that verifies is renamed into place."""
    _check_target(store)
    if not store.path.parent.is_dir():
        raise StoreError(f"{store.path.parent}: no such folder")
    staging = store.path.parent / f".{store.path.name}{TEMP_MARK}restore-{os.getpid()}"
    plain = staging.with_name(staging.name + ".tgz")
    shutil.rmtree(staging, ignore_errors=True)
    plain.unlink(missing_ok=True)
    try:
        size = _decrypt_to(archive, passphrase, plain)
        ensure_private_dir(staging)
        files = _unpack(plain, staging, MAX_INFLATION * size + INFLATION_MARGIN, archive)
        plain.unlink()
        summary = _verify_staged(archive, staging, passphrase, files, now)
        _check_target(store)  # still free?
        if store.path.is_dir():
            store.path.rmdir()
        os.rename(staging, store.path)
        fsync_dir(store.path.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        plain.unlink(missing_ok=True)
        raise
    summary["store"] = str(store.path)
    return summary


def _verify_staged(archive: Path, staging: Path, passphrase: "Passphrase", files: dict[str, str], now: datetime
                   ) -> dict[str, Any]:
    """Open the staged store, refuse what no CA accounts for, verify it, and record the restore in its ledger."""
    from privca.maintenance.verify import verify_store

    restored = Store(staging)
    restored.create()  # the folders an archive does not carry (pending/) and the ledger's WAL mode
    try:
        referenced = cas.key_refs(restored.ledger)
        stray = sorted(name for name in files if name.startswith("keys/") and name not in referenced)
        if stray:
            # A key file no CA names has no business in a store; an archive that plants one is refused, not
            # restored with a note the operator may never read.
            raise BackupError(f"{archive}: holds key files that no CA in its ledger uses ({', '.join(stray)}); "
                              "refusing it")
        # The certificate files the ledger names (and their folders) are not part of a store, and may not
        # exist on this machine; everything in the store itself must be whole.
        report = verify_store(restored, passphrase=passphrase, skip=["files", "leftovers"])
        if not report.ok:
            raise BackupError(f"{archive}: the restored store does not verify; nothing was restored",
                              problems=[f.text() for f in report.findings[:10]])
        summary: dict[str, Any] = {
            "cas": report.checked.get("cas", 0), "certificates": report.checked.get("certificates", 0),
            "events": report.checked.get("events", 0), "events_head": report.events_head,
            "profiles": sorted(name.removeprefix("profiles/") for name in files if name.startswith("profiles/")),
            "files": sorted(files),
        }
        ledger = restored.ledger
        with ledger.write():
            events.record(ledger, now, "restore", {"archive": str(archive.absolute()),
                                                 "certificates": summary["certificates"],
                                                 "profiles": summary["profiles"]})
    finally:
        restored.close()
    return summary
