"""Options, output and passphrase handling shared by every command. Nothing heavy is imported here."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..keys import Passphrase
    from ..store import Store

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store folder [default: $PRIVCA_STORE, else ./store]", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the CA passphrase from this file (else $PRIVCA_PASSPHRASE, else a hidden prompt).",
        show_default=False,
    ),
]


def now() -> datetime:
    """The one place the CLI reads the clock; the library always takes ``now`` as an argument."""
    return datetime.now(timezone.utc)


def open_store(store: Path | None) -> "Store":
    from ..store import Store

    return Store(store)


def passphrase_source(passphrase_file: Path | None, *, confirm: bool = False) -> "Passphrase":
    """The CA passphrase from the file, the environment, or a hidden prompt (confirmed when ``confirm``)."""
    from ..errors import KeyMaterialError
    from ..keys import Passphrase, passphrase_from_env_or_file

    found = passphrase_from_env_or_file(passphrase_file)
    if found is not None:
        return found
    if not sys.stdin.isatty():
        raise KeyMaterialError(
            "CA passphrase: not given; set PRIVCA_PASSPHRASE or use --passphrase-file when there is no terminal"
        )
    import getpass

    value = getpass.getpass("CA passphrase: ")
    if confirm and getpass.getpass("Repeat the CA passphrase: ") != value:
        raise KeyMaterialError("CA passphrase: the two entries differ; nothing was created")
    if not value:
        raise KeyMaterialError("CA passphrase: empty")
    return Passphrase(value.encode())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def console(stderr: bool = False) -> Any:
    """A rich console that honours NO_COLOR and plain (non-terminal) output."""
    from rich.console import Console

    return Console(stderr=stderr, no_color="NO_COLOR" in os.environ, highlight=False, soft_wrap=True)


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    """A table for people; plain tab-separated lines when stdout is not a terminal."""
    if not sys.stdout.isatty():
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    from rich.table import Table

    grid = Table(title=title, show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    console().print(grid)


def note(message: str) -> None:
    """Human-oriented information goes to stderr so stdout stays clean for pipes."""
    sys.stderr.write(message + "\n")


class progress_bar:
    """A progress bar on stderr for long work on a terminal; silent otherwise.

    The bar appears on the first step, not on entry, so that a passphrase prompt before the work is not
    drawn over.
    """

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self._progress: Any = None
        self._task: Any = None
        self._enabled = total > 1 and sys.stderr.isatty()

    def __enter__(self) -> Any:
        return self.advance

    def advance(self, step: int = 1) -> None:
        if not self._enabled:
            return
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                      console=console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total)
        self._progress.advance(self._task, step)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
