"""Where a CA lives: a folder with the ledger, the encrypted CA keys and the operator's own profiles.

The store is chosen with ``--store DIR``, else the PRIVCA_STORE variable, else ``./store``. It is created owner-only
(0700) and every key file in it is 0600.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from privca.errors import StoreError
from privca.common.fsutil import ensure_private_dir

if TYPE_CHECKING:
    from privca.ledger.db import Ledger

STORE_ENV = "PRIVCA_STORE"
DEFAULT_STORE = Path("store")
LEDGER_FILE = "privca.db"


def resolve_store_path(store: Path | str | None) -> Path:
    if store is not None and str(store) != "":
        return Path(store)
    env = os.environ.get(STORE_ENV)
    return Path(env) if env else DEFAULT_STORE


class Store:
    """A privca store folder. Opening it never creates anything; ``create()`` does."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = resolve_store_path(path)
        self._ledger: Ledger | None = None

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
                raise StoreError(f"{self.path}: no privca store here; create one with: privca init")
            from privca.ledger.db import Ledger

            fresh = not self.ledger_path.exists()
            if fresh and not (self.keys_dir.is_dir()):
                raise StoreError(f"{self.path}: no privca store here; create one with: privca init")
            if fresh:
                # Created owner-only before SQLite opens it: SQLite gives the -wal and -shm files the same mode.
                try:
                    os.close(os.open(self.ledger_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except FileExistsError:
                    pass  # another privca created it a moment ago
            self._ledger = Ledger(self.ledger_path)
        return self._ledger

    def require_ca(self) -> "Ledger":
        """The ledger of a store that has a CA; a clear error otherwise."""
        if not self.is_initialised():
            raise StoreError(f"{self.path}: no CA in this store; create one with: privca init")
        from privca.ledger.cas import exists

        ledger = self.ledger
        if not exists(ledger):
            raise StoreError(f"{self.path}: no CA in this store; create one with: privca init")
        return ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
