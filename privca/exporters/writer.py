"""Put a whole bundle folder in place at once.

Every file is written into a temporary sibling folder first; only when all of them are there is that folder
renamed to the requested name. A failure at any point leaves the requested folder as it was (absent, empty, or
the previous export).

``--force`` replaces a folder only if it is empty or privca wrote it (it holds the ``.privca-bundle`` marker):
``privca export cucm --out . --force`` must never wipe someone's working folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from privca.errors import OutputError
from privca.common.fsutil import TEMP_MARK, atomic_write, fsync_dir, make_output_dirs

MARKER = ".privca-bundle"


def check_target(out: Path, *, force: bool) -> None:
    """Refuse a target that is a link or a file, holds someone else's files, or is not empty without --force.
    ``out`` is absolute and normalised (see ``write_folder``)."""
    if not out.name:
        raise OutputError(f"{out}: choose a folder for the bundle, not the file system root")
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; privca does not write through links")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; choose a folder for the bundle")
    if out.is_dir():
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise OutputError(f"{out}: cannot read the folder ({exc.strerror})") from None
        if not empty and not force:
            raise OutputError(f"{out}: already exists and is not empty; use --force to replace it")
        if not empty and not (out / MARKER).is_file():
            raise OutputError(f"{out}: holds files that privca did not export; --force only replaces an earlier "
                              "privca export; choose a new or empty folder")
    existing = next(p for p in out.parents if p.exists())  # where the staging folder and the rename happen
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{existing}: cannot write there; choose a folder you can write to")


def _missing_parents(out: Path) -> list[Path]:
    """The folders above ``out`` that do not exist yet, outermost first."""
    return list(reversed([p for p in out.parents if not p.exists()]))


def write_folder(out: Path, files: Mapping[str, bytes], *, marker: str, force: bool) -> None:
    """Make ``out`` hold exactly ``files`` (relative paths) plus the marker, all at once."""
    out = Path(os.path.abspath(out))  # "." and "a/.." need a real name for the staging sibling
    check_target(out, force=force)
    created = _missing_parents(out)
    staging = out.with_name(f".{out.name}{TEMP_MARK}{os.getpid()}")
    previous = out.with_name(f".{out.name}.privca-old-{os.getpid()}")
    moved_away = False
    try:
        for folder in created:
            folder.mkdir(mode=0o755)
        shutil.rmtree(staging, ignore_errors=True)  # a left-over from a killed run; never renamed into place
        staging.mkdir(mode=0o755)
        for relative, data in sorted({**files, MARKER: marker.encode()}.items()):
            target = staging / relative
            make_output_dirs(target.parent)
            atomic_write(target, data, mode=0o644)
        if out.is_dir():  # empty, or an earlier export (check_target made sure)
            os.rename(out, previous)
            moved_away = True
        os.rename(staging, out)
        fsync_dir(out.parent)
    except OSError as exc:
        _undo(out, staging, previous, moved_away, created)
        raise OutputError(f"{out}: cannot write the bundle ({exc.strerror}); nothing was changed") from None
    except BaseException:
        _undo(out, staging, previous, moved_away, created)
        raise
    if moved_away:
        shutil.rmtree(previous, ignore_errors=True)


def _undo(out: Path, staging: Path, previous: Path, moved_away: bool, created: list[Path]) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if moved_away and not out.exists():
        os.rename(previous, out)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass
