"""The privca command line: a thin layer over the library. The only place that prints or exits.

Command modules import typer only; each command imports the library it needs when it runs. The commands are
listed in ``COMMANDS`` and the Typer app is built from it (``privca/cli/app.py``) only when a command runs:
``privca --help`` prints the list from here, without importing typer at all.
"""

from __future__ import annotations

import sys
from typing import Any

from privca.errors import PrivcaError

DESCRIPTION = "A private certificate authority for Cisco collaboration estates (Expressway, CUCM, Unity, CMS, CUBE)."

# name, module in privca.cli, attribute (a command function or a Typer group), summary. The summary is the first
# line of the command's docstring (tests/test_cli_startup.py keeps the two equal); --help lists them in this order.
COMMANDS: list[tuple[str, str, str, str]] = [
    ("init", "init_cmd", "init", "Create a self-signed root CA and an issuing CA (pathlen 0) in the store."),
    ("issue", "issue_cmd", "issue",
     "Issue a certificate for each CSR: <name>.pem, <name>.chain.pem (CAs) and <name>.fullchain.pem."),
    ("list", "ledger_cmd", "list_certificates", "List issued certificates, soonest expiry first."),
    ("show", "ledger_cmd", "show", "Show one certificate from the ledger."),
    ("profiles", "profiles_cmd", "app", "List, show and check issuance profiles."),
    ("export", "export_cmd", "export",
     "Write the CA certificates a peer must trust, in the form it takes, with INSTRUCTIONS.md for its administrator."),
    ("revoke", "revoke_cmd", "revoke", "Revoke a certificate, or put it on hold (--reason certificateHold)."),
    ("unhold", "revoke_cmd", "unhold",
     "Release a certificate from hold (certificateHold): it is valid again and leaves the next CRL."),
    ("crl", "revoke_cmd", "crl",
     "Sign a new CRL for every CA: the issuing CA's lists revoked certificates, the root's revoked intermediates."),
    ("status", "revoke_cmd", "status",
     "Show how fresh each CA's CRL is; exit 0 if all are fresh, 1 if one is due, 2 if one is stale or missing."),
    ("publish", "revoke_cmd", "publish",
     "Write each CA's latest CRL under the path its CRL URL names (DER, plus a .pem copy)."),
    ("serve", "serve_cmd", "serve",
     "Serve each CA's CRL at the path of its CRL URL, and answer OCSP at the path of its OCSP URL."),
    ("ca", "ca_cmd", "app", "The CAs themselves: list and show every generation, and set their CRL and OCSP URLs."),
    ("renew", "rotate_cmd", "renew",
     "Renew a certificate: same names and profile, new serial, linked to the old one in the ledger."),
    ("rotate", "rotate_cmd", "app",
     "Rotate a CA generation: a new issuing CA, or a root rollover with cross-certificates."),
    ("plan", "rotate_cmd", "plan",
     "Show what expires when, what to renew or rotate by when, and which trust bundles go to which peers."),
    ("audit", "audit_cmd", "audit",
     "Audit certificates: chain and root (public or private), EKUs, key, expiry, and a verdict with its remedy."),
    ("check", "audit_cmd", "check",
     "Predict whether a product will accept a certificate and whether mTLS will work in its roles."),
    ("verify", "verify_cmd", "verify",
     "Check that the store is whole: exit 0 when it is, 13 with every problem listed when it is not."),
    ("backup", "backup_cmd", "backup",
     "Write an encrypted backup of the store: ledger, CA keys, profiles. Safe while others issue."),
    ("restore", "backup_cmd", "restore",
     "Restore a backup into a new store folder (missing or empty), check it, and only then put it in place."),
]

HELP_OPTIONS = ("-h", "--help")


def top_level_help() -> str:
    """``privca --help``, in click's layout."""
    width = max(len(name) for name, *_ in COMMANDS) + 2
    lines = ["Usage: privca [OPTIONS] COMMAND [ARGS]...", "", f"  {DESCRIPTION}", "",
             "  Start with: privca init, privca export all, privca issue. Every command has --help with examples.",
             "", "Options:", "  --version   Print privca's version and exit.",
             "  -h, --help  Show this message and exit.", "", "Commands:"]
    lines += [f"  {name:{width}}{summary}" for name, _, _, summary in COMMANDS]
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
    if args == ["--version"]:
        from privca import __version__

        sys.stdout.write(f"privca {__version__}\n")
        sys.exit(0)
    if not args or (len(args) == 1 and args[0] in HELP_OPTIONS):
        sys.stdout.write(top_level_help())
        sys.exit(0 if args else 2)  # plain `privca` is a usage mistake that shows the help, as click does

    import typer

    from privca.cli.app import build_app

    app = build_app(args[0] if args[0] in {name for name, *_ in COMMANDS} else None)
    try:
        code = app(args=args, prog_name="privca", standalone_mode=False)
    except PrivcaError as exc:
        _fail(exc.one_line(), exc.exit_code)
    except _usage_exception() as caught:
        usage: Any = caught  # click's UsageError family: show(), exit_code, format_message()
        if type(usage).__name__ == "NoArgsIsHelpError":
            usage.show()  # a group without its subcommand: the group's help
            sys.exit(usage.exit_code)
        context = getattr(usage, "ctx", None)
        _fail(f"{usage.format_message()} (see: {context.command_path if context else 'privca'} --help)",
              usage.exit_code)
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
    from privca.common.names import printable

    # One line, and no terminal control sequences from a hostile file name or value (they show as \x1b).
    sys.stderr.write(f"Error: {printable(' '.join(message.split()), limit=10_000)}\n")
    sys.exit(code)
