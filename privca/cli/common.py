"""Options, output and passphrase handling shared by every command. Nothing heavy is imported here."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from privca.keys.material import Passphrase
    from privca.ledger.chain import SealMade
    from privca.ledger.db import Ledger
    from privca.keys.keystore import CASecrets
    from privca.ledger.store import Store

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store folder [default: $PRIVCA_STORE, else ./store if it holds a CA, else the store "
                 "privca init recorded for you]", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the CA passphrase from this file (else $PRIVCA_PASSPHRASE, else a hidden prompt).",
        show_default=False,
    ),
]

PinFileOption = Annotated[
    Path | None,
    typer.Option(
        "--pin-file",
        help="Read the HSM token's user PIN from this file (else $PRIVCA_PKCS11_PIN, else a hidden prompt).",
        show_default=False,
    ),
]
Pkcs11ModuleOption = Annotated[
    str | None,
    typer.Option(
        "--pkcs11-module",
        help="PKCS#11 module (.so) of the HSM, e.g. /usr/lib/softhsm/libsofthsm2.so; default: $PRIVCA_PKCS11_MODULE, "
        "then the module recorded with the CA's key.",
        show_default=False,
    ),
]


def now() -> datetime:
    """The one place the CLI reads the clock; the library always takes ``now`` as an argument."""
    return datetime.now(timezone.utc)


def open_store(store: Path | None) -> "Store":
    """The store the command works on. When the user did not name it (with --store or PRIVCA_STORE), say which one
    it is and how it was found, so that nobody works on one store believing it is another."""
    from privca.ledger.store import HERE, RECORDED, Store

    found = Store(store, on_open=check_head, on_sealed=remember_seal)
    if found.source in (HERE, RECORDED):
        note(f"Store: {found.path.absolute()} ({found.source})")
    return found


def _head_cache(ledger: "Ledger") -> Path | None:
    """Where this user remembers the last seal of a store whose signature was checked: outside the store (an
    intruder who can write the store cannot vouch for his own seal there), in the user's cache folder."""
    import hashlib
    import os

    base = os.environ.get("XDG_CACHE_HOME")
    home = os.environ.get("HOME")
    folder = Path(base) if base and Path(base).is_absolute() else (Path(home) / ".cache" if home else None)
    if folder is None:
        return None
    return folder / "privca" / "seals" / hashlib.sha256(str(ledger.path.absolute()).encode()).hexdigest()


def check_head(ledger: "Ledger") -> None:
    """Every command that opens a store checks its signed head and warns in one line when the events log was cut
    short, rewritten or its seal forged (``privca verify`` says more). A seal checked once is remembered in the
    user's cache, so the check is then two queries and no signature (docs/verify.md)."""
    from privca.ledger.proof import head_problem

    cache = _head_cache(ledger)
    try:
        known = cache.read_text().strip() if cache is not None and cache.is_file() else None
    except (OSError, UnicodeDecodeError):
        known = None
    try:
        problem, token = head_problem(ledger, known)
    except Exception as exc:  # a ledger too damaged to answer: the command itself reports what it cannot read
        problem, token = f"the ledger's signed head cannot be read ({type(exc).__name__})", None
    if problem is not None:
        note(f"Warning: {problem}")
    elif token is not None and token != known:
        _remember(cache, token)


def remember_seal(ledger: "Ledger", made: "SealMade") -> None:
    """A seal this command made is genuine (it holds the key): remember it as checked, so that the next command
    that reads the store does not check its signature (nor import the cryptography it takes)."""
    from privca.ledger.proof import made_token

    _remember(_head_cache(ledger), made_token(ledger, made))


def _remember(cache: Path | None, token: str | None) -> None:
    if cache is None or token is None:
        return
    import os

    from privca.common.fsutil import ensure_private_dir, write_temp
    from privca.errors import PrivcaError

    try:
        ensure_private_dir(cache.parent)
        # Not synced to disk: a cache lost in a power cut only costs one signature check.
        os.replace(write_temp(cache, token.encode(), mode=0o600, durable=False), cache)
    except (OSError, PrivcaError):
        pass  # a read-only home: the signature is simply checked again next time


def passphrase_source(passphrase_file: Path | None, *, confirm: bool = False) -> "Passphrase":
    """The CA passphrase from the file, the environment, or a hidden prompt (confirmed when ``confirm``)."""
    from privca.keys.material import PASSPHRASE_ENV

    return _secret(passphrase_file, PASSPHRASE_ENV, "--passphrase-file", "CA passphrase", confirm=confirm)


def pin_source(pin_file: Path | None) -> "Passphrase":
    """The token user PIN from the file, the environment, or a hidden prompt (asked once, never retried)."""
    from privca.keys.hsm import PIN_ENV

    return _secret(pin_file, PIN_ENV, "--pin-file", "token PIN", confirm=False)


def _secret(path: Path | None, env_name: str, option: str, what: str, *, confirm: bool) -> "Passphrase":
    from privca.errors import KeyMaterialError
    from privca.keys.material import Passphrase, secret_from_env_or_file

    found = secret_from_env_or_file(path, env_name, what.split()[-1])
    if found is not None:
        return found
    if not sys.stdin.isatty():
        raise KeyMaterialError(f"{what}: not given; set {env_name} or use {option} when there is no terminal")
    import getpass

    value = getpass.getpass(f"{what[0].upper()}{what[1:]}: ")
    if confirm and getpass.getpass(f"Repeat the {what}: ") != value:
        raise KeyMaterialError(f"{what}: the two entries differ; nothing was created")
    if not value:
        raise KeyMaterialError(f"{what}: empty")
    return Passphrase(value.encode())


def ca_secrets(passphrase_file: Path | None, pin_file: Path | None, pkcs11_module: str | None) -> "CASecrets":
    """What opening a CA key may need; the passphrase or the PIN is asked for only if the CA's key needs it."""
    from privca.keys.keystore import CASecrets

    return CASecrets(passphrase=lambda: passphrase_source(passphrase_file), pin=lambda: pin_source(pin_file),
                     pkcs11_module=pkcs11_module)


def unlock_issuing_key_ahead(store: "Store", secrets: "CASecrets", passphrase_file: Path | None) -> None:
    """Begin unlocking the active issuing CA's key before the signing code is imported, so that the two overlap
    (``privca issue one.csr``: ~45 ms of scrypt beside ~80 ms of imports). Only with a passphrase from a file or
    the environment; a missing CA or any other problem is reported by the command itself, in its usual place."""
    import os

    from privca.keys.material import PASSPHRASE_ENV

    if passphrase_file is None and not os.environ.get(PASSPHRASE_ENV):
        return  # a prompt: asked after the CSRs are checked, as always
    from privca.authority.ca import active_issuing
    from privca.errors import PrivcaError
    from privca.keys.keystore import unlock_ahead

    try:
        unlock_ahead(store, active_issuing(store), secrets)
    except PrivcaError:
        return


def sign_first_crls(store: "Store", secrets: Any, moment: datetime) -> list[str]:
    """Sign a CRL for every CA right after it is created, with the keys already unlocked.

    Certificates point at their CA's CRL from the first day, and Expressway treats a CA whose CRL it cannot
    fetch or whose CRL expired as revoking everything: so a new CA starts with a fresh CRL in the ledger,
    ready for ``privca publish``.
    """
    from privca.revocation.revoke import issue_crls

    return [record["ca"] for record in issue_crls(store, secrets, now=moment)]


def san_text(sans: object) -> str:
    """The typed SANs of a certificate's JSON record (``[{"type": "dns", "value": ...}]``) as one line."""
    if not isinstance(sans, list):
        return ""
    return ", ".join(str(item["value"]) if isinstance(item, dict) else str(item) for item in sans)


def fingerprint_text(hex_digest: str) -> str:
    """A fingerprint as Cisco's GUIs, Java and OpenSSL show it to people: ``AB:CD:...``."""
    return ":".join(hex_digest[i:i + 2] for i in range(0, len(hex_digest), 2)).upper()


# The version of every JSON document privca prints (docs/json.md); raised when a field changes meaning or goes.
JSON_SCHEMA = 1


def print_json(data: Any, key: str | None = None) -> None:
    """One JSON document on stdout, always an object that starts with its ``schema`` version (docs/json.md): a
    list goes under ``key`` (``{"schema": 1, "certificates": [...]}``), an object gets ``schema`` added."""
    if isinstance(data, list):
        if key is None:
            raise TypeError("print_json: a list needs the key it is printed under")
        document: dict[str, Any] = {"schema": JSON_SCHEMA, key: data}
    else:
        document = {"schema": JSON_SCHEMA, **data}
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[str]], drop_first: tuple[str, ...] = ()) -> None:
    """A table for people, fitted to the terminal (``drop_first``: the columns to leave out first when it is
    narrow); tab-separated lines with a header when stdout is not a terminal."""
    from privca.cli.terminal import print_table

    print_table(title, columns, rows, drop_first)


STDIN_LIMIT = 8 * 1024 * 1024  # above the largest file audit reads (5 MiB) and any CSR: the rest is not input


def read_stdin() -> bytes:
    """What was piped in for the ``-`` argument, bounded (a stray ``/dev/zero`` must not fill memory)."""
    from privca.errors import UsageError

    if sys.stdin.isatty():
        raise UsageError("-: reads standard input, which is a terminal here; pipe or redirect a file into privca")
    data = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise UsageError(f"-: standard input holds more than {STDIN_LIMIT // (1024 * 1024)} MiB")
    return data


def note(message: str) -> None:
    """Human-oriented information goes to stderr so stdout stays clean for pipes."""
    sys.stderr.write(message + "\n")


class progress_bar:
    """``Signing 3/10`` on stderr, rewritten in place, for long work on a terminal; silent otherwise.

    The count appears on the first step, not on entry, so that a passphrase prompt before the work is not
    drawn over; it is erased on exit so that only results stay on screen.
    """

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self._shown = False
        self._enabled = total > 1 and sys.stderr.isatty()

    def __enter__(self) -> Any:
        return self.advance

    def advance(self, step: int = 1) -> None:
        if not self._enabled:
            return
        self.done += step
        self._shown = True
        sys.stderr.write(f"\r{self.label} {self.done}/{self.total}")
        sys.stderr.flush()

    def __exit__(self, *exc: Any) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * (len(self.label) + 2 * len(str(self.total)) + 2) + "\r")
            sys.stderr.flush()
