"""Every exit code privca uses, in one table: for ``privca --help``, docs/exit-codes.md and scripts.

The error codes come from the classes in privca/errors.py, so a new error class appears here by itself.
"""

from __future__ import annotations

from privca import errors

# privca status speaks the monitoring plugins' language (Nagios, Icinga, Zabbix): 0 OK, 1 WARNING, 2 CRITICAL.
# privca audit and privca check exit with the worst finding at or above --fail-on (privca/common/findings.py).
FIXED: dict[int, str] = {
    0: "Success. privca status: every CRL fresh (OK).",
    1: "A failure not listed below (e.g. a prompt was aborted). privca status: a CRL is due (WARNING).",
    2: "A usage mistake (unknown option, bad value). privca status: a CRL stale or missing, or no issuing CA "
       "(CRITICAL).",
    20: "privca audit / check: the worst finding is info (only with --fail-on info).",
    21: "privca audit / check: the worst finding is a warning.",
    22: "privca audit / check: the worst finding is critical.",
}


def _error_classes() -> list[type[errors.PrivcaError]]:
    found: list[type[errors.PrivcaError]] = []
    pending: list[type[errors.PrivcaError]] = [errors.PrivcaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def exit_codes() -> dict[int, str]:
    """Code -> meaning, in order."""
    table = dict(FIXED)
    for cls in _error_classes():
        if cls.exit_code not in FIXED:
            doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0].replace("``", "")
            table[cls.exit_code] = doc
    return dict(sorted(table.items()))


def exit_code_lines() -> list[str]:
    return [f"{code:>3}  {meaning}" for code, meaning in exit_codes().items()]


def exit_code_epilog() -> str:
    """The exit-code table for the end of ``privca --help`` (click keeps a paragraph that starts with \\b as
    written)."""
    return "\b\nExit codes:\n" + "\n".join(exit_code_lines())
