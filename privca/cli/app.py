"""The Typer app, built from ``COMMANDS`` (privca/cli/commands.py) only when a command runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from privca.cli.commands import COMMANDS, DESCRIPTION
from privca.cli.exitcodes import exit_code_epilog

Target = Callable[..., Any] | typer.Typer


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with just the one about to run (building each command's parameters from
    its signature is most of typer's start-up work)."""
    built = typer.Typer(
        name="privca",
        help=DESCRIPTION,
        epilog=exit_code_epilog(),
        no_args_is_help=True,
        # --install-completion and --show-completion, as Typer users expect (docs/cli.md). They are options of
        # `privca` itself, so only the whole tree needs them; a single command skips typer's completion imports.
        add_completion=only is None,
        # Locals may hold a passphrase or a key: never show them in a traceback.
        pretty_exceptions_show_locals=False,
        # Plain help text: rich's Markdown and panel rendering cost ~100 ms of imports on every --help.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    # A group even with one command, so `privca NAME ...` parses the same; it also carries -V for completion.
    built.callback()(_group)
    for name, _ in COMMANDS:
        if only is not None and name != only:
            continue
        target = load_command(name)
        if isinstance(target, typer.Typer):
            built.add_typer(target, name=name)
        else:
            built.command(name)(target)
    return built


def build_command(only: str | None = None) -> Any:
    """The click command tree of the app, with examples verbatim, conventional metavars and completion."""
    from privca.cli.helptext import polish

    return polish(typer.main.get_command(build_app(only)))


def load_command(name: str) -> Target:
    """The function or Typer group of command ``name``. Each command module is imported here, at the call, so
    that a run imports only the module of the command it runs (tests/test_cli_startup.py measures it)."""
    command: Target
    match name:
        case "init":
            from privca.cli.init_cmd import init as command
        case "issue":
            from privca.cli.issue_cmd import issue as command
        case "list":
            from privca.cli.ledger_cmd import list_certificates as command
        case "show":
            from privca.cli.ledger_cmd import show as command
        case "profiles":
            from privca.cli.profiles_cmd import app as command
        case "export":
            from privca.cli.export_cmd import export as command
        case "revoke":
            from privca.cli.revoke_cmd import revoke as command
        case "unhold":
            from privca.cli.revoke_cmd import unhold as command
        case "crl":
            from privca.cli.revoke_cmd import crl as command
        case "status":
            from privca.cli.revoke_cmd import status as command
        case "publish":
            from privca.cli.revoke_cmd import publish as command
        case "serve":
            from privca.cli.serve_cmd import serve as command
        case "enroll":
            from privca.cli.enroll_cmd import app as command
        case "ca":
            from privca.cli.ca_cmd import app as command
        case "renew":
            from privca.cli.rotate_cmd import renew as command
        case "rotate":
            from privca.cli.rotate_cmd import app as command
        case "plan":
            from privca.cli.rotate_cmd import plan as command
        case "audit":
            from privca.cli.audit_cmd import audit as command
        case "check":
            from privca.cli.audit_cmd import check as command
        case "verify":
            from privca.cli.verify_cmd import verify as command
        case "backup":
            from privca.cli.backup_cmd import backup as command
        case "restore":
            from privca.cli.backup_cmd import restore as command
        case "notify":
            from privca.cli.notify_cmd import notify as command
        case _:
            raise KeyError(name)
    return command


def _version(value: bool) -> None:
    if value:
        from privca.version import __version__

        typer.echo(f"privca {__version__}")
        raise typer.Exit(0)


def _group(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print privca's version and exit.",
                                          is_eager=True, callback=_version)] = False,
) -> None:
    """A private certificate authority for Cisco collaboration estates."""
