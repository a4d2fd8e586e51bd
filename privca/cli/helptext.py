"""Help that can be pasted: examples kept verbatim, metavars as man pages write them, completion on every parameter.

Applied once to the click command tree that Typer builds, so that every command gets the same treatment and the
command modules stay plain Typer.
"""

from __future__ import annotations

import re
import types
from typing import Any

from privca.cli.completion import completer_for

# click rewraps every paragraph of help to the terminal width unless the paragraph starts with a \b line. An
# example rewrapped at 80 columns cannot be pasted (an option or a quoted name split across lines).
NO_REWRAP = "\b"
EXAMPLES = re.compile(r"^\s*Examples?:\s*$", re.MULTILINE)

# Argument metavars by parameter name (command-specific first), in the usage line and the help.
ARGUMENTS = {
    "issue csrs": "CSR...", "audit targets": "TARGET...", "check cert": "CERT", "ca show name": "CA",
    "profiles show name": "PROFILE", "profiles check path": "FILE", "export peer": "PEER", "publish directory": "DIR",
    "serial": "SERIAL", "archive": "ARCHIVE",
}
# Option metavars by parameter name; any other option shows its own name in capitals.
OPTIONS = {
    "store": "DIR", "out": "DIR", "passphrase_file": "FILE", "pin_file": "FILE", "password_file": "FILE",
    "html": "FILE", "key": "FILE", "chain": "FILE", "public_roots": "FILE", "trust_data": "FILE",
    "pkcs11_module": "MODULE", "profile": "PROFILE", "days": "DAYS", "root_days": "DAYS", "issuing_days": "DAYS",
    "expiring_within": "DAYS", "status": "STATUS", "reason": "REASON", "role": "ROLE", "fail_on": "SEVERITY",
    "expressway_version": "VERSION", "timeout": "SECONDS", "crl_url": "URL", "ocsp_url": "URL", "ca": "CA",
    "key_type": "TYPE", "root_cn": "CN", "issuing_cn": "CN", "org": "ORG", "token_label": "LABEL", "title": "TEXT",
    "within": "DAYS",
}


def verbatim_examples(text: str) -> str:
    """Mark each paragraph after ``Examples:`` so that click prints it as written."""
    match = EXAMPLES.search(text)
    if match is None:
        return text
    head, tail = text[:match.end()], text[match.end():]
    paragraphs = re.split(r"\n\s*\n", tail.strip("\n"))
    marked = [p if p.lstrip().startswith(NO_REWRAP) else f"{NO_REWRAP}\n{p}" for p in paragraphs]
    return head + "\n\n" + "\n\n".join(marked)


def _argument_metavar(self: Any, ctx: Any, *, usage: bool = False) -> str:
    """The metavar alone (``CSR...``), in brackets when optional: not Typer's ``{csrs}...`` or ``[serial]``."""
    var = str(self.metavar)
    return f"[{var}]" if usage and not self.required else var


def polish(command: Any, path: str = "") -> Any:
    """Examples verbatim, conventional metavars and shell completion for ``command`` and all its subcommands."""
    if command.help:
        command.help = verbatim_examples(command.help)
    for param in command.params:
        name = param.name or ""
        if param.param_type_name == "argument":
            metavar = ARGUMENTS.get(f"{path} {name}".strip()) or ARGUMENTS.get(name) or name.upper()
            if param.nargs != 1 and not metavar.endswith("..."):
                metavar += "..."
            param.metavar = metavar
            param.make_metavar = types.MethodType(_argument_metavar, param)
        elif param.param_type_name == "option" and not param.is_flag and param.metavar is None:
            param.metavar = OPTIONS.get(name, name.upper())
        completer = completer_for(path, name)
        if completer is not None and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = completer
    for name, sub in (getattr(command, "commands", None) or {}).items():
        polish(sub, f"{path} {name}".strip())
    return command
