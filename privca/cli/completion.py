"""What the shell offers after a TAB: profile names, peers, serials and CA names from the store, fixed choices.

Completion runs inside the administrator's shell on every TAB, so it reads the store the command line names
(``--store``, else $PRIVCA_STORE, else ./store), never asks for a passphrase, never writes, and offers nothing
rather than print an error into the prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

Completer = Callable[[Any, Any, str], list[str]]

STATUSES = ("valid", "expired", "revoked", "hold")
FAIL_ON = ("info", "warning", "critical", "never")
SHELLS = ("bash", "zsh", "fish")


def _store(ctx: Any) -> Any:
    from privca.ledger.store import Store

    root = ctx
    found = None
    while root is not None and found is None:  # --store may sit on the command or on its group
        found = (root.params or {}).get("store")
        root = root.parent
    return Store(Path(found) if found else None)


def _quiet(source: Callable[[Any], list[str]]) -> Completer:
    """Offer ``source``'s words that start with what was typed; nothing at all when the store cannot say."""

    def complete(ctx: Any, param: Any, incomplete: str) -> list[str]:
        try:
            words = source(ctx)
        except Exception:  # noqa: BLE001 - a TAB must never print a traceback or an error into the shell
            return []
        return [word for word in words if word.startswith(incomplete)]

    return complete


def _profiles(ctx: Any) -> list[str]:
    from privca.issuance.profiles import available_profiles

    return list(available_profiles(_store(ctx).profiles_dir))


def _serials(ctx: Any) -> list[str]:
    from privca.common.serials import serial_text
    from privca.ledger import certificates

    store = _store(ctx)
    if not store.is_initialised():
        return []
    # As privca list shows them (whole bytes: a leading 0 kept), so a completed serial matches what was read.
    return [serial_text(cert.serial) for cert in certificates.listing(store.ledger, now=datetime.now(timezone.utc))]


def _ca_serials(ctx: Any) -> list[str]:
    from privca.common.serials import serial_text
    from privca.ledger import cas

    store = _store(ctx)
    return sorted(serial_text(serial) for serial in cas.serials(store.ledger)) if store.is_initialised() else []


def _ca_names(ctx: Any) -> list[str]:
    from privca.ledger import cas

    store = _store(ctx)
    return list(cas.names(store.ledger).values()) if store.is_initialised() else []


def _peers(ctx: Any) -> list[str]:
    from privca.exporters.peers import ALL, peer_names

    return peer_names() + [ALL]


def _roles(ctx: Any) -> list[str]:
    from privca.inspect.check import ROLES

    return list(ROLES)


def _reasons(ctx: Any) -> list[str]:
    from privca.revocation.revoke import REASONS

    return list(REASONS)


def _revoke_serials(ctx: Any) -> list[str]:
    return _ca_serials(ctx) if ctx.params.get("ca") else _serials(ctx)


def _fixed(words: tuple[str, ...]) -> Callable[[Any], list[str]]:
    return lambda ctx: list(words)


# (command path without "privca", parameter name) -> words; "*" matches the parameter in every command.
COMPLETERS: dict[tuple[str, str], Completer] = {
    ("*", "profile"): _quiet(_profiles),
    ("profiles show", "name"): _quiet(_profiles),
    ("show", "serial"): _quiet(_serials),
    ("renew", "serial"): _quiet(_serials),
    ("unhold", "serial"): _quiet(_serials),
    ("revoke", "serial"): _quiet(_revoke_serials),
    ("revoke", "reason"): _quiet(_reasons),
    ("export", "peer"): _quiet(_peers),
    ("check", "role"): _quiet(_roles),
    ("ca show", "name"): _quiet(_ca_names),
    ("ca set-url", "ca"): _quiet(_ca_names),
    ("list", "status"): _quiet(_fixed(STATUSES)),
    ("*", "fail_on"): _quiet(_fixed(FAIL_ON)),
}


def completer_for(path: str, name: str) -> Completer | None:
    return COMPLETERS.get((path, name)) or COMPLETERS.get(("*", name))
