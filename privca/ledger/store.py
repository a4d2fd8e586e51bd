"""Where a CA lives: a folder with the ledger, the encrypted CA keys and the operator's own profiles.

The store is found in this order: ``--store DIR``; the PRIVCA_STORE variable; ``./store`` when it holds a CA; the
store ``privca init`` recorded for the user (``$XDG_CONFIG_HOME/privca/config.toml``, else
``~/.config/privca/config.toml``). With none of them, ``./store`` is where ``privca init`` creates one. So a
command run from another folder finds the user's CA instead of reporting an empty store, and following that
report never silently makes a second root. The store is created owner-only (0700) and every key file in it is 0600.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from privca.errors import StoreError
from privca.common.fsutil import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from privca.ledger.chain import SealMade
    from privca.ledger.db import Ledger

STORE_ENV = "PRIVCA_STORE"
DEFAULT_STORE = Path("store")
LEDGER_FILE = "privca.db"
CONFIG_FILE = Path("privca") / "config.toml"

# How the store was found, as ``Store.source`` says it (and the commands tell the user).
GIVEN, FROM_ENV, HERE, RECORDED, DEFAULT = "--store", STORE_ENV, "./store", "recorded by privca init", "default"


def user_config_file() -> Path | None:
    """The user's privca configuration file (XDG base directories), or None when there is no home to keep it in."""
    base = os.environ.get("XDG_CONFIG_HOME")
    if base and Path(base).is_absolute():
        return Path(base) / CONFIG_FILE
    home = os.environ.get("HOME")
    return Path(home) / ".config" / CONFIG_FILE if home else None


def recorded_store() -> Path | None:
    """The store ``privca init`` recorded for this user, if any (whether or not it still holds a CA)."""
    import tomllib

    config = user_config_file()
    if config is None or not config.is_file():
        return None
    try:
        value = tomllib.loads(config.read_text(encoding="utf-8")).get("store")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StoreError(f"{config}: cannot be read ({exc}); fix or remove it") from None
    return Path(value) if isinstance(value, str) and value else None


def record_store(path: Path) -> Path | None:
    """Remember ``path`` as the user's store (for commands run from any folder); returns the config file written."""
    config = user_config_file()
    if config is None:
        return None
    ensure_private_dir(config.parent)
    # A JSON string is a valid TOML basic string: quotes, backslashes and control characters are escaped alike.
    text = "# Written by privca init: the store privca uses when neither --store nor PRIVCA_STORE says otherwise.\n"
    atomic_write(config, (text + f"store = {json.dumps(str(path.absolute()))}\n").encode(), mode=0o600,
                 overwrite=True)
    return config


def holds_ca(path: Path) -> bool:
    return (path / LEDGER_FILE).is_file()


def resolve_store(store: Path | str | None) -> tuple[Path, str]:
    """The store folder to use and how it was found (one of GIVEN, FROM_ENV, HERE, RECORDED, DEFAULT)."""
    if store is not None and str(store) != "":
        return Path(store), GIVEN
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env), FROM_ENV
    if holds_ca(DEFAULT_STORE):
        return DEFAULT_STORE, HERE
    recorded = recorded_store()
    if recorded is not None and holds_ca(recorded):
        return recorded, RECORDED
    return DEFAULT_STORE, DEFAULT


def resolve_store_path(store: Path | str | None) -> Path:
    return resolve_store(store)[0]


class Store:
    """A privca store folder. Opening it never creates anything; ``create()`` does."""

    def __init__(self, path: Path | str | None = None, *,
                 on_open: "Callable[[Ledger], None] | None" = None,
                 on_sealed: "Callable[[Ledger, SealMade], None] | None" = None) -> None:
        """``on_open`` is called with the ledger when an existing one is first opened (the command line's check of
        the signed head), ``on_sealed`` after each seal this process makes (see ``privca.ledger.chain``)."""
        self.path, self.source = resolve_store(path)
        self._ledger: Ledger | None = None
        self._on_open = on_open
        self._on_sealed = on_sealed

    def _missing(self, what: str) -> StoreError:
        """No store or no CA here: the absolute path tried, how it was chosen, and how to point at another."""
        where = self.path.absolute()
        how = {GIVEN: "given with --store", FROM_ENV: f"from {STORE_ENV}", HERE: "./store",
               RECORDED: "recorded by privca init"}.get(self.source, "./store, the default: no --store, no "
                                                        f"{STORE_ENV}, no store recorded by privca init")
        return StoreError(f"{where}: {what} ({how}); point at your store with --store DIR or {STORE_ENV}=DIR, "
                          "or create a CA with: privca init")

    @property
    def ledger_path(self) -> Path:
        return self.path / LEDGER_FILE

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def profiles_dir(self) -> Path:
        return self.path / "profiles"

    @property
    def pending_dir(self) -> Path:
        """Journals of writes in progress (privca/ledger/journal.py); empty when nothing is being written."""
        return self.path / "pending"

    def is_initialised(self) -> bool:
        return self.ledger_path.is_file()

    def create(self) -> "Ledger":
        """Make the folders (0700) and a fresh ledger."""
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: exists and is not a folder")
        ensure_private_dir(self.path)
        ensure_private_dir(self.keys_dir)
        ensure_private_dir(self.profiles_dir)
        ensure_private_dir(self.pending_dir)
        return self.ledger

    @property
    def ledger(self) -> "Ledger":
        """The ledger, opened on first use. Raises StoreError when the store was never initialised."""
        if self._ledger is None:
            if not self.path.is_dir():
                raise self._missing("no privca store here")
            from privca.ledger.db import Ledger

            fresh = not self.ledger_path.exists()
            if fresh and not (self.keys_dir.is_dir()):
                raise self._missing("no privca store here")
            if fresh:
                # Created owner-only before SQLite opens it: SQLite gives the -wal and -shm files the same mode.
                try:
                    os.close(os.open(self.ledger_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except FileExistsError:
                    pass  # another privca created it a moment ago
            self._ledger = Ledger(self.ledger_path)
            if self._on_sealed is not None:
                opened, told = self._ledger, self._on_sealed
                opened.on_sealed = lambda made: told(opened, made)
            if not fresh and self._on_open is not None:
                self._on_open(self._ledger)
        return self._ledger

    def require_ca(self) -> "Ledger":
        """The ledger of a store that has a CA; a clear error otherwise."""
        if not self.is_initialised():
            raise self._missing("no CA in this store")
        from privca.ledger.cas import exists

        ledger = self.ledger
        if not exists(ledger):
            raise self._missing("no CA in this store")
        return ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
