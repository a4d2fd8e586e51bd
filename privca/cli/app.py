"""The Typer app, built from ``COMMANDS`` in privca/cli/__init__.py (imported only when a command runs)."""

from __future__ import annotations

from importlib import import_module

import typer

from privca.cli import COMMANDS, DESCRIPTION

def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with just the one about to run (building each command's parameters from
    its signature is most of typer's start-up work)."""
    built = typer.Typer(
        name="privca",
        help=DESCRIPTION,
        no_args_is_help=True,
        add_completion=False,
        # Locals may hold a passphrase or a key: never show them in a traceback.
        pretty_exceptions_show_locals=False,
        # Plain help text: rich's Markdown and panel rendering cost ~100 ms of imports on every --help.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    if only is not None:
        built.callback()(_group)  # a group even with one command, so `privca NAME ...` parses the same
    for name, module, attribute, _ in COMMANDS:
        if only is not None and name != only:
            continue
        target = getattr(import_module(f"{__package__}.{module}"), attribute)
        if isinstance(target, typer.Typer):
            built.add_typer(target, name=name)
        else:
            built.command(name)(target)
    return built


def _group() -> None:
    """A private certificate authority for Cisco collaboration estates."""

