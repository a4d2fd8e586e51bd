"""The privca command line: a thin layer over the library. The only place that prints or exits.

Command modules import typer only; each command imports the library it needs when it runs, so ``privca --help``
does not pay for cryptography or SQLite.
"""

from __future__ import annotations

import sys

import typer

from ..errors import PrivcaError
from . import backup_cmd, init_cmd, issue_cmd, ledger_cmd, profiles_cmd, verify_cmd

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
app.command("backup")(backup_cmd.backup)
app.command("restore")(backup_cmd.restore)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every PrivcaError and every usage mistake (an unknown option, a value
    that is not a number) into one ``Error:`` line and its exit code."""
    try:
        code = app(args=argv, prog_name="privca", standalone_mode=False)
    except PrivcaError as exc:
        _fail(exc.one_line(), exc.exit_code)
    except _usage_exception() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # plain `privca`: the help text
            sys.exit(exc.exit_code)
        context = getattr(exc, "ctx", None)
        _fail(f"{exc.format_message()} (see: {context.command_path if context else 'privca'} --help)", exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_exception() -> type[Exception]:
    """The base class of click's usage errors: bundled in typer since 0.2x, click's own before."""
    try:
        from typer import TyperException

        return TyperException
    except ImportError:  # pragma: no cover - older typer on click
        from click import ClickException

        return ClickException


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"Error: {' '.join(message.split())}\n")
    sys.exit(code)
