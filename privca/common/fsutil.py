"""Owner-only folders and atomic file writes.

Every file privca writes goes to a temporary name in the same folder first and is renamed into place, so a
crash or a kill never leaves half a file behind under the real name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from privca.errors import OutputError, PrivcaError, StoreError

TEMP_MARK = ".privca-tmp-"


def open_regular_file(path: Path, error: type[PrivcaError]) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, else ``error`` naming it. Checked on the open file
    itself, and opened without blocking: /dev/zero or a FIFO given as input must give an error, not exhaust
    memory or wait for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{path}: not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular_file(path: Path, limit: int, error: type[PrivcaError]) -> bytes:
    """At most ``limit + 1`` bytes of a regular file (so the caller can tell "too large"), or ``error`` naming the
    path (``open_regular_file``)."""
    with open_regular_file(path, error) as handle:
        try:
            return handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read ({exc.strerror})") from None


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed and make sure only the owner can enter it."""
    try:
        # Each missing folder on the way is made 0700 too: mkdir(parents=True) would give the parents the
        # umask's mode (0755), and a cache folder two levels down would be open to everyone.
        for folder in [*reversed(path.parents), path]:
            if not folder.exists():
                folder.mkdir(mode=0o700, exist_ok=True)
        if path.is_symlink():
            raise StoreError(f"{path}: is a symbolic link; use the real folder")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create a private folder ({exc.strerror})") from None


def temp_name(final: Path, tag: str = "") -> Path:
    """The temporary sibling that ``final`` is written to before it is renamed into place."""
    return final.with_name(f".{final.name}{TEMP_MARK}{tag or os.getpid()}")


def write_temp(final: Path, data: bytes, *, mode: int = 0o644, tag: str = "", durable: bool = True) -> Path:
    """Write ``data`` to the temporary sibling of ``final`` and return its path (not yet renamed).

    The file is created with O_EXCL | O_NOFOLLOW so that a planted symbolic link is never followed.
    """
    tmp = temp_name(final, tag)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except FileExistsError:
        # A left-over from a killed run with the same tag: it was never renamed, so it holds nothing we need.
        tmp.unlink()
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise OutputError(f"{final.parent}: cannot write there ({exc.strerror})") from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
    return tmp


def atomic_write(final: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = False) -> None:
    """Write ``data`` to ``final`` all at once: either the whole new file is there, or the old state is.

    A file that is replaced again and again (a CRL from cron) also sheds the temporary copies that earlier
    writers, killed before their rename, left beside it: nothing else would ever remove them from a folder the
    ledger does not know (a web server's document root).
    """
    check_writable_target(final, overwrite=overwrite)
    if overwrite:
        remove_dead_temps(final)
    tmp = write_temp(final, data, mode=mode)
    try:
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
    fsync_dir(final.parent)  # the rename itself must survive a power cut (a CA key saved with its ledger row)


def remove_dead_temps(final: Path) -> None:
    """Remove the temporary siblings of ``final`` whose writer process is gone; a running writer's are kept."""
    prefix = f".{final.name}{TEMP_MARK}"
    try:
        names = [name for name in os.listdir(final.parent) if name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        path = final.parent / name
        if not writer_alive(path) and not path.is_dir():
            path.unlink(missing_ok=True)


def writer_alive(path: Path) -> bool:
    """Temporary files of atomic_write carry their writer's process id: is that process still running?"""
    tag = path.name.rpartition(TEMP_MARK)[2]
    if not (tag.isdigit() and len(tag) <= 9):
        return False
    try:
        os.kill(int(tag), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def check_writable_target(final: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing file unless asked, and never write through a symbolic link."""
    try:
        info = os.lstat(final)  # one system call: batches check thousands of paths
    except OSError:
        return  # not there (or its folder is not): writing it will create it or say why not
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"{final}: is a symbolic link; privca does not write through links")
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{final}: is a folder")
    if not overwrite:
        raise OutputError(f"{final}: already exists; use --force to replace it")


def fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def walk_files(top: Path) -> list[Path]:
    """Every file under ``top``, folder by folder in name order, the way ``os.walk`` lists them top-down.

    An explicit stack instead of recursion: ``os.walk`` recurses once per level (before Python 3.12), so a
    hostile tree a thousand folders deep would end in RecursionError. Symbolic links to folders are not followed
    (a link loop would never end); unreadable folders are passed over, as ``os.walk`` does.
    """
    found: list[Path] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(Path(entry.path))
                elif not entry.is_dir():  # a link to a folder is neither listed nor entered
                    found.append(Path(entry.path))
            except OSError:
                found.append(Path(entry.path))  # reported by whoever reads it
        pending.extend(reversed(subfolders))
    return found


def make_output_dirs(path: Path) -> None:
    """Create ``path`` and any missing parents as 0755 whatever the umask: never group- or world-writable.

    ``Path.mkdir(mode, parents=True)`` creates the parents with the default mode (0777 under ``umask 000``), where
    anyone could swap a certificate or CRL file for another before a peer fetches it.
    """
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:
            continue  # made meanwhile by another privca
        except OSError as exc:
            raise OutputError(f"{folder}: cannot create the folder ({exc.strerror})") from None


def refuse_inside_store(path: Path, store: Path, option: str) -> None:
    """Output folders never lie inside the CA store: its files are private, and what privca writes there (keys,
    the ledger) must never be overwritten or mixed with certificates and CRLs that are handed out."""
    try:
        inside = path.resolve().is_relative_to(store.resolve())
    except OSError:
        return
    if inside:
        raise OutputError(f"{option} {path}: is inside the CA store {store}; write certificates and CRLs elsewhere")
