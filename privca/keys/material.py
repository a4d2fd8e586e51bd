"""Key generation, encrypted key files and passphrases: the only code that reads or writes private keys.

CA keys are stored as PKCS#8 ``EncryptedPrivateKeyInfo`` using PBES2 with the scrypt KDF (RFC 7914 section 7)
and AES-256-CBC. cryptography's ``BestAvailableEncryption`` for PKCS#8 uses PBKDF2 with 2,048 iterations, which
is cheap to brute-force; scrypt is memory-hard, and OpenSSL (``openssl pkey``), cryptography and Java-free
tooling all read this form. The DER is assembled here because cryptography has no PKCS#8 encryption builder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from privca.errors import KeyMaterialError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes

PASSPHRASE_ENV = "PRIVCA_PASSPHRASE"
MIN_PASSPHRASE_LENGTH = 12
MAX_PASSPHRASE_BYTES = 4096

# scrypt cost N=2**14, r=8, p=1 (16 MiB, ~40 ms per unlock) is OpenSSL's own `-scrypt` default and the
# largest that the OpenSSL 3.0 command line still opens (it caps scrypt memory at 32 MiB), so an
# administrator can always inspect or move a key with `openssl pkey`.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1

# Leaf keys a profile may allow (P-521: Expressway X15.4's CSR generator offers it); CA keys are fewer.
KEY_TYPES = ("rsa:2048", "rsa:3072", "rsa:4096", "ec:secp256r1", "ec:secp384r1", "ec:secp521r1")
CA_KEY_TYPES = ("rsa:3072", "rsa:4096", "ec:secp256r1", "ec:secp384r1")
#: A CA key reference that starts with this is an RFC 7512 PKCS#11 URI (a key in a token), not a file.
TOKEN_REF_SCHEME = "pkcs11:"


class Passphrase:
    """A secret that refuses to show itself in reprs, logs and tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"

    __str__ = __repr__


# A secret as callers hold it: text (taken as UTF-8), bytes, or already a Passphrase.
Secret = str | bytes | Passphrase


def as_passphrase(secret: Secret) -> Passphrase:
    """``secret`` as a Passphrase; text is encoded as UTF-8, as a passphrase typed at a prompt is."""
    if isinstance(secret, Passphrase):
        return secret
    return Passphrase(secret.encode() if isinstance(secret, str) else bytes(secret))


def secret_from_env_or_file(path: Path | None, env_name: str, what: str) -> Passphrase | None:
    """A secret (passphrase, token PIN) from its file or its environment variable, or None (then prompt)."""
    if path is not None:
        try:
            # Bounded: the file may be a pipe (--passphrase-file <(pass show ca)), but never /dev/zero's worth.
            with path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                data = handle.read(MAX_PASSPHRASE_BYTES + 1)
        except OSError as exc:
            raise KeyMaterialError(f"{path}: cannot read the {what} file ({exc.strerror})") from None
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
            # Refused rather than warned: a secret other users can read is already disclosed, and a warning in a
            # cron job's log changes nothing. A pipe (--passphrase-file <(pass show ca)) is not a file on disk.
            raise KeyMaterialError(f"{path}: other users can read or change this {what} file (mode "
                                   f"{stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}")
        if len(data) > MAX_PASSPHRASE_BYTES:
            raise KeyMaterialError(f"{path}: longer than {MAX_PASSPHRASE_BYTES} bytes; not a {what} file")
        # A trailing newline is what editors and `echo` add; it is never part of the secret.
        value = data.rstrip(b"\r\n")
        if not value:
            raise KeyMaterialError(f"{path}: the {what} file is empty")
        return Passphrase(value)
    env = os.environ.get(env_name)
    if env:
        return Passphrase(env.encode())
    return None


def check_new_passphrase(passphrase: Passphrase) -> None:
    if len(passphrase.reveal()) < MIN_PASSPHRASE_LENGTH:
        raise KeyMaterialError(f"passphrase: too short; use at least {MIN_PASSPHRASE_LENGTH} characters")


@dataclass(frozen=True)
class KeySpec:
    """A key algorithm and size, written as in profiles and options: ``rsa:3072`` or ``ec:secp256r1``."""

    algorithm: str  # "rsa" or "ec"
    param: str  # bits for RSA, curve name for EC

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...] = KEY_TYPES) -> "KeySpec":
        if text not in allowed:
            raise UsageError(f"key type {text!r}: not supported; choose one of {', '.join(allowed)}")
        algorithm, _, param = text.partition(":")
        return cls(algorithm, param)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.param}"


def generate_key(spec: KeySpec) -> "CertificateIssuerPrivateKeyTypes":
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if spec.algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec.param))
    curve = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}[spec.param]
    return ec.generate_private_key(curve)


def describe_public_key(public_key: "PublicKeyTypes") -> tuple[str, str]:
    """``("rsa", "3072")``, ``("ec", "secp256r1")``, or the class name for anything else."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", str(public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec", public_key.curve.name
    return type(public_key).__name__.lower().removeprefix("_"), "?"


# --- PKCS#8 EncryptedPrivateKeyInfo with PBES2 / scrypt / AES-256-CBC -----------------------------------------

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def encrypt_private_key(key: "CertificateIssuerPrivateKeyTypes", passphrase: Passphrase) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` (PKCS#8, PBES2 with scrypt and AES-256-CBC)."""
    import base64

    from cryptography.hazmat.primitives import padding, serialization
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, iv = os.urandom(16), os.urandom(16)
    kek = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.reveal())
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    der = _encrypted_key_info(salt, iv, encrypted)
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED PRIVATE KEY-----\n").encode()


def _encrypted_key_info(salt: bytes, iv: bytes, encrypted: bytes) -> bytes:
    """The DER of privca's EncryptedPrivateKeyInfo: PBES2, scrypt (N, r, p above), AES-256-CBC."""
    from privca.common.der import integer, octets, oid, sequence

    scrypt_params = sequence(octets(salt), integer(SCRYPT_N), integer(SCRYPT_R), integer(SCRYPT_P), integer(32))
    pbes2_params = sequence(sequence(oid(_OID_SCRYPT), scrypt_params), sequence(oid(_OID_AES256_CBC), octets(iv)))
    return sequence(sequence(oid(_OID_PBES2), pbes2_params), octets(encrypted))


def _read_encrypted_key_info(pem_data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(salt, iv, encrypted key) of a key file exactly as ``encrypt_private_key`` writes it, else None (a key
    file in any other form is left to cryptography). Exactly: the DER must re-encode to itself."""
    import base64

    from privca.common.der import children

    try:
        body = pem_data.decode("ascii").strip()
        header, footer = "-----BEGIN ENCRYPTED PRIVATE KEY-----", "-----END ENCRYPTED PRIVATE KEY-----"
        if not (body.startswith(header) and body.endswith(footer)):
            return None
        der = base64.b64decode("".join(body[len(header):-len(footer)].split()), validate=True)
        ((_, info),) = children(der)
        (_, algorithm), (_, encrypted) = children(info)
        _, (_, pbes2) = children(algorithm)
        (_, kdf), (_, cipher) = children(pbes2)
        (_, salt), *_ = children(children(kdf)[1][1])
        _, (_, iv) = children(cipher)
    except (ValueError, TypeError, UnicodeDecodeError, IndexError):
        return None
    return (salt, iv, encrypted) if _encrypted_key_info(salt, iv, encrypted) == der else None


class UnlockAhead:
    """The slow half of opening a key file, begun before it is needed: scrypt (~45 ms at privca's cost) lets go
    of Python's global lock, so on a thread it runs while the command imports the code that signs (~80 ms).
    ``load_private_key`` takes the result only for the very bytes and passphrase it was begun with; for anything
    else (another form of key file, a key replaced meanwhile, a wrong passphrase) it decrypts as usual."""

    def __init__(self, path: Path, passphrase: Passphrase) -> None:
        import threading

        self._passphrase = passphrase
        self._data = b""
        self._kek: bytes | None = None
        self._thread = threading.Thread(target=self._derive, args=(path,), name="privca-unlock", daemon=True)
        self._thread.start()

    def _derive(self, path: Path) -> None:
        import hashlib

        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                return  # a link or a FIFO: load_private_key refuses it with the reason
            data = path.read_bytes()
            found = _read_encrypted_key_info(data)
            if found is None:
                return
            self._kek = hashlib.scrypt(self._passphrase.reveal(), salt=found[0], n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                                       dklen=32)
            self._data = data
        except (OSError, ValueError, MemoryError):
            return  # load_private_key reads the file again and says what is wrong

    def key(self, data: bytes, passphrase: Passphrase, trusted: bool) -> "CertificateIssuerPrivateKeyTypes | None":
        """The key in ``data`` decrypted with the key derived ahead, or None to decrypt it the usual way."""
        self._thread.join()
        if self._kek is None or data != self._data or passphrase.reveal() != self._passphrase.reveal():
            return None
        found = _read_encrypted_key_info(data)
        if found is None:
            return None
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.serialization import load_der_private_key

        _, iv, encrypted = found
        try:
            decryptor = Cipher(algorithms.AES(self._kek), modes.CBC(iv)).decryptor()
            padded = decryptor.update(encrypted) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
            key = load_der_private_key(plain, None, unsafe_skip_rsa_key_validation=trusted)
        except (ValueError, TypeError):
            return None  # a wrong passphrase: the usual way says so
        return key  # type: ignore[return-value]


def load_private_key(path: Path, passphrase: Passphrase, *, trusted: bool = True,
                     ahead: UnlockAhead | None = None) -> "CertificateIssuerPrivateKeyTypes":
    """Decrypt a CA key file (with the work ``ahead`` began, when it matches).

    ``trusted`` skips cryptography's RSA consistency check (~150 ms for RSA-3072) for keys privca generated
    itself; the check guards against malicious key files, which a store's own 0600 files are not.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        st = path.lstat()
    except OSError:
        raise KeyMaterialError(f"{path}: CA key file is missing") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise KeyMaterialError(f"{path}: CA key file is not a regular file")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyMaterialError(f"{path}: CA key file is readable by others; run: chmod 600 {path}")
    data = path.read_bytes()
    if ahead is not None and (unlocked := ahead.key(data, passphrase, trusted)) is not None:
        return unlocked
    try:
        key = load_pem_private_key(data, passphrase.reveal(), unsafe_skip_rsa_key_validation=trusted)
    except (ValueError, TypeError):
        raise KeyMaterialError(f"{path}: cannot decrypt the CA key; wrong passphrase?") from None
    return key  # type: ignore[return-value]
