"""The privca command line: a thin layer over the library. The only place that prints or exits.

Command modules import typer only; each command imports the library it needs when it runs. The commands are
listed in ``COMMANDS`` (``privca/cli/commands.py``) and the Typer app is built from it (``privca/cli/app.py``) only
when a command runs: ``privca --help`` prints the list from here, without importing typer at all.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from privca.cli.commands import COMMANDS, DESCRIPTION
from privca.errors import PrivcaError

HELP_OPTIONS = ("-h", "--help")
VERSION_OPTIONS = ("-V", "--version")
COMPLETE_VAR = "_PRIVCA_COMPLETE"  # click's and Typer's completion protocol: _<PROG>_COMPLETE


def top_level_help() -> str:
    """``privca --help``, in click's layout."""
    from privca.cli.exitcodes import exit_code_lines

    width = max(len(name) for name, *_ in COMMANDS) + 2
    lines = ["Usage: privca [OPTIONS] COMMAND [ARGS]...", "", f"  {DESCRIPTION}", "",
             "  Start with: privca init, privca export all, privca issue. Every command has --help with examples.",
             "", "Options:",
             "  -V, --version         Print privca's version and exit.",
             "  --install-completion  Install completion for the current shell (bash, zsh, fish).",
             "  --show-completion     Show completion for the current shell, to copy it or customize the",
             "                        installation.",
             "  -h, --help            Show this message and exit.", "", "Commands:"]
    lines += [f"  {name:{width}}{summary}" for name, summary in COMMANDS]
    lines += ["", "Exit codes:"] + [f"  {line}" for line in exit_code_lines()]
    return "\n".join(lines) + "\n"


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole Typer app, built on first use
        from privca.cli.app import build_app

        return build_app()
    raise AttributeError(f"module 'privca.cli' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every PrivcaError and every usage mistake (an unknown option, a value
    that is not a number) into one ``Error:`` line and its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get(COMPLETE_VAR):  # the shell asks what to offer after a TAB: the whole tree answers
        from privca.cli.app import build_command

        build_command().main(args=args, prog_name="privca", complete_var=COMPLETE_VAR)
    if len(args) == 1 and args[0] in VERSION_OPTIONS:
        from privca.version import __version__

        sys.stdout.write(f"privca {__version__}\n")
        sys.exit(0)
    if not args or (len(args) == 1 and args[0] in HELP_OPTIONS):
        sys.stdout.write(top_level_help())
        sys.exit(0 if args else 2)  # plain `privca` is a usage mistake that shows the help, as click does

    import typer

    from privca.cli.app import build_command

    command = build_command(args[0] if args[0] in {name for name, *_ in COMMANDS} else None)
    as_json = "--json" in (args[:args.index("--")] if "--" in args else args)
    try:
        code = command.main(args=args, prog_name="privca", standalone_mode=False)
    except PrivcaError as exc:
        _fail(exc.one_line(), exc.exit_code, error_kind(type(exc)), as_json)
    except _usage_exception() as caught:
        usage: Any = caught  # click's UsageError family: show(), exit_code, format_message()
        if type(usage).__name__ == "NoArgsIsHelpError":
            usage.show()  # a group without its subcommand: the group's help
            sys.exit(usage.exit_code)
        context = getattr(usage, "ctx", None)
        _fail(f"{usage.format_message()} (see: {context.command_path if context else 'privca'} --help)",
              usage.exit_code, "usage", as_json)
    except typer.Abort:
        _fail("aborted", 1, "aborted", as_json)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_exception() -> type[Exception]:
    """click's ClickException, the base of every usage error, whether typer bundles click (0.2x) or depends on it:
    found through typer's own BadParameter so that privca imports no undeclared library."""
    import typer

    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


def error_kind(cls: type[PrivcaError]) -> str:
    """The error's class as a stable word for scripts: KeyMaterialError -> key_material, CSRError -> csr."""
    import re

    if cls is PrivcaError:
        return "error"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__.removesuffix("Error")).lower()  # CSRError: csr


def _fail(message: str, code: int, kind: str, as_json: bool) -> None:
    from privca.common.names import printable

    text = printable(" ".join(message.split()), limit=10_000)
    if as_json:  # a script that asked for JSON gets its error as JSON too, on stderr, with the same exit code
        import json

        from privca.cli.common import JSON_SCHEMA

        error = {"schema": JSON_SCHEMA, "error": {"kind": kind, "exit_code": code, "message": text}}
        sys.stderr.write(json.dumps(error) + "\n")
    else:  # one line, and no terminal control sequences from a hostile file name or value (they show as \x1b)
        sys.stderr.write(f"Error: {text}\n")
    sys.exit(code)
