"""The Typer app, built from ``COMMANDS`` in privca/cli/__init__.py (imported only when a command runs)."""

from __future__ import annotations

from importlib import import_module

import typer

from . import COMMANDS, DESCRIPTION

app = typer.Typer(
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
for _name, _module, _attribute, _summary in COMMANDS:
    _target = getattr(import_module(f"{__package__}.{_module}"), _attribute)
    if isinstance(_target, typer.Typer):
        app.add_typer(_target, name=_name)
    else:
        app.command(_name)(_target)
