"""Where CA keys live: encrypted key files in the store, or a PKCS#11 token (an HSM).

Two functions are the whole interface. ``create_ca_key`` makes the key of a new CA; ``load_ca_key`` opens the key
of a CA in the ledger. The ledger's ``cas.key_ref`` says where a key is: a path inside the store
(``keys/issuing-1.key.pem``) or an RFC 7512 PKCS#11 URI (``pkcs11:token=...;object=...``, see ``privca.keys.hsm``).
Callers never look at which one it is: both give a ``cryptography`` private key object that can sign.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from privca.errors import KeyMaterialError, StoreError, UsageError
from privca.keys.material import (CA_KEY_TYPES, TOKEN_REF_SCHEME, KeySpec, Passphrase, Secret, UnlockAhead,
                                  as_passphrase, check_new_passphrase, describe_public_key)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

    from privca.keys.hsm import TokenKeyRef
    from privca.ledger.journal import Journal
    from privca.ledger.records import CA
    from privca.ledger.store import Store

# A secret, or a function that asks for it (a prompt), called only when a key needs it.
SecretSource = Secret | Callable[[], Secret]


def is_token_ref(key_ref: str) -> bool:
    return key_ref.startswith(TOKEN_REF_SCHEME)


@dataclass
class CASecrets:
    """What opening CA keys may need; each secret is asked for only when a key needs it.

    ``passphrase`` unlocks key files, ``pin`` logs in to a token; either may be a function that asks for it (a
    prompt), called at most once. ``pkcs11_module`` replaces the module path recorded with token keys (a module
    moved, or another machine).
    """

    passphrase: SecretSource | None = None
    pin: SecretSource | None = None
    pkcs11_module: str | None = None
    _resolved: dict[str, Passphrase] = field(default_factory=dict, repr=False)
    _ahead: dict[str, UnlockAhead] = field(default_factory=dict, repr=False)  # key_ref -> its unlock, begun early

    @classmethod
    def of(cls, value: "CASecrets | SecretSource | None") -> "CASecrets":
        """Accept a bare passphrase (or passphrase prompt), as callers that only know key files pass."""
        return value if isinstance(value, CASecrets) else cls(passphrase=value)

    def get_passphrase(self) -> Passphrase:
        return self._get("passphrase", "CA passphrase: not given")

    def get_pin(self) -> Passphrase:
        return self._get("pin", "token PIN: not given; set PRIVCA_PKCS11_PIN or use --pin-file")

    def _get(self, name: str, missing: str) -> Passphrase:
        if name not in self._resolved:
            source = getattr(self, name)
            if source is None:
                raise KeyMaterialError(missing)
            self._resolved[name] = as_passphrase(source() if callable(source) else source)
        return self._resolved[name]


@dataclass(frozen=True)
class TokenChoice:
    """The PKCS#11 token that is to hold new CA keys: the module (.so) to load and the token's label."""

    module: str
    label: str


@dataclass
class NewCAKey:
    """The key of a CA being created. ``save()`` keeps it (inside the ledger transaction that records the CA);
    ``done()`` follows the commit; ``discard()`` undoes whatever creating it did, when the CA is not recorded
    after all.

    A key file must be on disk before the row that names it commits, so a process killed in between leaves a key
    file that no CA uses. ``save()`` therefore first writes a journal (privca/ledger/journal.py) naming the file and a
    hash of its bytes: recovery removes the file exactly when no CA row names it and it is the file this run
    wrote. A key file no journal accounts for is never removed automatically (``privca verify`` reports it).
    """

    key: "CertificateIssuerPrivateKeyTypes"
    key_ref: str
    spec: KeySpec
    _file: "tuple[Store, Path, Passphrase] | None" = None
    _generated_in_token: "TokenKeyRef | None" = None
    _pin: Callable[[], Passphrase] | None = None
    _saved: bool = False
    _journal: "Journal | None" = None
    _journal_scope: ExitStack = field(default_factory=ExitStack)

    def save(self) -> None:
        if self._file is None:
            return
        from privca.common.fsutil import atomic_write
        from privca.ledger.journal import open_journal
        from privca.keys.material import encrypt_private_key

        store, path, passphrase = self._file
        data = encrypt_private_key(self.key, passphrase)
        entry = {"final": str(path.absolute()), "tag": str(os.getpid()), "key_ref": self.key_ref,
                 "sha256": hashlib.sha256(data).hexdigest()}
        self._journal = self._journal_scope.enter_context(open_journal(store, "ca-key", [entry], created_dirs=[]))
        try:
            atomic_write(path, data, mode=0o600, overwrite=False)  # the temporary file carries the pid: the tag
        except BaseException:
            self.done()
            raise
        self._saved = True

    def done(self) -> None:
        """The CA row committed (or nothing was saved): the journal has nothing left to recover."""
        if self._journal is not None:
            self._journal.finish()
            self._journal = None
        self._journal_scope.close()

    def discard(self) -> None:
        if self._file is not None and self._saved:
            self._file[1].unlink(missing_ok=True)
        self.done()
        if self._generated_in_token is not None and self._pin is not None:
            from privca.keys.hsm import destroy_key

            # Best effort: the failure that led here is what the user must see. A key left behind (the token
            # went away) carries privca's label and can be deleted with the token's own tool.
            with suppress(Exception):
                destroy_key(self._generated_in_token, self._pin)


def create_ca_key(
    store: "Store", name: str, spec: KeySpec | None, secrets: CASecrets, *, token: TokenChoice | None = None,
    key_label: str | None = None,
) -> NewCAKey:
    """The key for a new CA called ``name`` (``root-1``, ``issuing-2``).

    Without ``token``: a new key, written encrypted to ``keys/<name>.key.pem`` by ``save()``. With ``token``: a
    new non-extractable key pair generated in the token, or, with ``key_label``, the existing pair with that
    label (``spec``, if given, must match it).
    """
    if token is None:
        if key_label is not None:
            raise UsageError("--root-key-label / --issuing-key-label: need --token-label (an existing key is "
                             "one in a token)")
        if spec is None:
            raise UsageError(f"{name}: a key type is needed to create a key")
        path = store.keys_dir / f"{name}.key.pem"
        if path.exists():
            raise StoreError(f"{path}: a CA key is already there; not overwriting it")
        passphrase = secrets.get_passphrase()
        check_new_passphrase(passphrase)
        from privca.keys.material import generate_key

        return NewCAKey(generate_key(spec), f"keys/{name}.key.pem", spec, _file=(store, path, passphrase))

    from privca.keys import hsm

    if key_label is not None:
        ref = hsm.TokenKeyRef(token.module, token.label, key_label)
        key = hsm.load_key(ref, secrets.get_pin)
        found = ":".join(describe_public_key(key.public_key()))
        if found not in CA_KEY_TYPES:
            raise KeyMaterialError(f"key {key_label!r} in token {token.label!r}: is {found}; a CA key must be one "
                                   f"of {', '.join(CA_KEY_TYPES)}")
        if spec is not None and str(spec) != found:
            raise UsageError(f"--key-type {spec}: key {key_label!r} in token {token.label!r} is {found}")
        return NewCAKey(key, ref.uri(), KeySpec.parse(found, CA_KEY_TYPES))

    if spec is None:
        raise UsageError(f"{name}: a key type is needed to generate a key in the token")
    ref = hsm.generate_key(token.module, token.label, name, spec, secrets.get_pin)
    try:
        key = hsm.load_key(ref, secrets.get_pin)
    except BaseException:
        hsm.destroy_key(ref, secrets.get_pin)
        raise
    return NewCAKey(key, ref.uri(), spec, _generated_in_token=ref, _pin=secrets.get_pin)


def token_of(ca: "CA", secrets: CASecrets) -> TokenChoice | None:
    """Where the next generation of a CA keeps its key: the token that holds this CA's key, or None for key files.

    A rotation never moves a CA's keys out of an HSM (nor into one) behind the operator's back.
    """
    key_ref = ca.key_ref
    if not is_token_ref(key_ref):
        return None
    from privca.keys import hsm

    ref = hsm.TokenKeyRef.parse(key_ref)
    return TokenChoice(hsm.module_path(secrets.pkcs11_module, ref.module), ref.token)


def load_ca_key(store: "Store", ca: "CA", secrets: CASecrets) -> "CertificateIssuerPrivateKeyTypes":
    """The signing key of ``ca``, wherever it is kept."""
    key_ref = ca.key_ref
    if is_token_ref(key_ref):
        from privca.keys import hsm

        ref = hsm.TokenKeyRef.parse(key_ref)
        ref = replace(ref, module=hsm.module_path(secrets.pkcs11_module, ref.module))
        return hsm.load_key(ref, secrets.get_pin)
    from privca.keys.material import load_private_key

    return load_private_key(store.path / key_ref, secrets.get_passphrase(), ahead=secrets._ahead.get(key_ref))


def unlock_ahead(store: "Store", ca: "CA", secrets: CASecrets) -> None:
    """Begin decrypting ``ca``'s key file on a thread (``UnlockAhead``) for ``load_ca_key`` to finish. Only when
    the passphrase is at hand without asking (a file, the environment): a prompt keeps its place, after the
    checks that need no key. A problem is left for the run itself to report where it always has."""
    if is_token_ref(ca.key_ref) or ca.key_ref in secrets._ahead:
        return
    try:
        passphrase = secrets.get_passphrase()
    except KeyMaterialError:
        return
    secrets._ahead[ca.key_ref] = UnlockAhead(store.path / ca.key_ref, passphrase)


def describe_key_ref(store: "Store", key_ref: str) -> str:
    """A key's location for messages: the key file's path, or the token URI."""
    return key_ref if is_token_ref(key_ref) else str(store.path / key_ref)


@dataclass(frozen=True)
class KeySealer:
    """A CA key at hand, lent to the ledger to seal the write transactions of this command
    (``privca.ledger.chain.Sealer``): one signature per transaction, never per certificate."""

    ca_id: int
    ca_fingerprint: str
    key: "CertificateIssuerPrivateKeyTypes" = field(repr=False)

    def sign(self, payload: bytes) -> tuple[str, bytes]:
        from privca.common.signatures import sign_sha256

        return sign_sha256(self.key, payload)


def seal_with(store: "Store", ca: "CA", key: "CertificateIssuerPrivateKeyTypes") -> None:
    """From now on, each write this process makes to the store's ledger is sealed with ``ca``'s key."""
    store.ledger.sealer = KeySealer(ca.id, ca.fingerprint_sha256, key)
