"""The TLS side of ``privca serve --https-port``: the server certificate (one privca issued) and client certificates.

EST (RFC 7030 3.3) runs only over TLS: the client checks the server against the CA chain it trusts (the one
``cacerts`` returns), and a device renewing presents its current certificate as the TLS client certificate. The
client certificate is asked for but optional (a first enrollment has none); when one is presented the handshake
verifies it against privca's own CA certificates, and the EST layer then checks it in the ledger (issued by
privca, valid, not revoked, same names).
"""

from __future__ import annotations

import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from privca.common.fsutil import read_regular_file
from privca.errors import KeyMaterialError, UsageError
from privca.keys.material import Passphrase

_MAX_PEM = 256 * 1024


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server certificate, followed by its chain (PEM)
    key: Path  # its private key (PEM, owner-only; may be encrypted)
    passphrase: Passphrase | None = None  # for an encrypted key (hidden in reprs and tracebacks)


def server_context(files: TlsFiles, client_cas_pem: list[str]) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the certificate and key, asking for (not requiring) a client certificate
    issued under one of ``client_cas_pem``.

    Raises:
        UsageError: the certificate file is not a PEM certificate.
        KeyMaterialError: the key file is readable by others, cannot be decrypted, or does not match.
    """
    cert_pem = read_regular_file(files.cert, _MAX_PEM, UsageError)
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise UsageError(f"--tls-cert {files.cert}: not a PEM certificate") from None
    try:
        mode = files.key.lstat().st_mode
    except OSError:
        raise KeyMaterialError(f"--tls-key {files.key}: no such file") from None
    if not stat.S_ISREG(mode):
        raise KeyMaterialError(f"--tls-key {files.key}: not a regular file")
    if stat.S_IMODE(mode) & 0o077:
        raise KeyMaterialError(f"--tls-key {files.key}: readable by others; run: chmod 600 {files.key}")
    key_pem = read_regular_file(files.key, _MAX_PEM, KeyMaterialError)
    try:
        key = load_pem_private_key(key_pem, files.passphrase.reveal() if files.passphrase else None)
    except TypeError:
        raise KeyMaterialError(f"--tls-key {files.key}: encrypted; give its passphrase with "
                               "--tls-passphrase-file") from None
    except ValueError:
        raise KeyMaterialError(f"--tls-key {files.key}: not a PEM private key, or the wrong passphrase") from None
    if key.public_key() != cert.public_key():
        raise KeyMaterialError(f"--tls-key {files.key}: does not belong to the certificate in {files.cert}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    secret = files.passphrase
    context.load_cert_chain(str(files.cert), str(files.key),
                            password=(lambda: secret.reveal()) if secret is not None else None)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata="".join(client_cas_pem))
    return context
