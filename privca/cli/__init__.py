"""The privca command line: a thin layer over the library. The only place that prints or exits.

Command modules import typer only; each command imports the library it needs when it runs, so ``privca --help``
does not pay for cryptography or SQLite.
"""

from __future__ import annotations

import sys

import typer

from ..errors import PrivcaError
from . import init_cmd, issue_cmd, ledger_cmd, profiles_cmd, verify_cmd

app = typer.Typer(
    name="privca",
    help="A private certificate authority for Cisco collaboration estates (Expressway, CUCM, Unity, CMS, CUBE).",
    no_args_is_help=True,
    add_completion=False,
    # Locals may hold a passphrase or a key: never show them in a traceback.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(init_cmd.init)
app.command("issue")(issue_cmd.issue)
app.command("list")(ledger_cmd.list_certificates)
app.command("show")(ledger_cmd.show)
app.add_typer(profiles_cmd.app, name="profiles")
app.command("verify")(verify_cmd.verify)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every PrivcaError into one ``Error:`` line and its exit code."""
    try:
        app(args=argv, prog_name="privca")
    except PrivcaError as exc:
        sys.stderr.write(f"Error: {exc.one_line()}\n")
        sys.exit(exc.exit_code)
