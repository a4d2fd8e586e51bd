"""Where certificates come from: files (PEM, DER, PKCS#7, PKCS#12), folders, and live TLS endpoints.

Reading is per unit (one file or one endpoint) and never raises for bad input: a unit that cannot be read comes
back with ``error`` set, so one garbage file or one closed port never stops an inventory of a whole estate.
Private keys found next to certificates are only used to compare public keys; they are never kept or shown.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
import ssl
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from privca.common import pem
from privca.common.fsutil import walk_files
from privca.errors import CertificateInputError, UsageError

MAX_FILE_BYTES = 5 * 1024 * 1024  # a certificate bundle is kilobytes; anything this big is not one
DEFAULT_TIMEOUT = 5.0
# PKCS#12 files from Windows, Java and OpenSSL use a few thousand MAC rounds (OpenSSL 3: 2048, keytool 10000);
# each attempt costs every round, so a file asking for billions would hold an audit for hours.
MAX_PKCS12_MAC_ITERATIONS = 1_000_000
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p12", ".pfx", ".key", ".chain", ".bundle")
KEY_SUFFIXES = (".key.pem", "-key.pem", "_key.pem", ".key")

ENCODING_PROBLEM = "encoding problem"
UNORDERED_PKCS7 = "PKCS#7 bundle (certificates in no particular order)"
UNORDERED_PKCS12 = "PKCS#12 bundle"
_ENDPOINT = re.compile(r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Unit:
    """One thing to read: a file, or a ``host:port`` TLS endpoint. ``explicit`` when named by the user."""

    kind: str  # "file" or "endpoint"
    name: str
    path: Path | None = None
    host: str = ""
    port: int = 0
    explicit: bool = True
    data: bytes | None = None  # what was read from standard input (target ``-``), read by the caller


@dataclass
class Loaded:
    """What one unit held: certificates in file or served order, and the public keys of any private keys."""

    unit: Unit
    certs: list[tuple[x509.Certificate, bytes]] = field(default_factory=list)
    key_publics: list[object] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False  # a file found in a folder that is not a certificate file (README, log): not an error
    ordered: bool = True  # False for PKCS#7 and PKCS#12, whose certificate lists have no order
    remarks: list[str] = field(default_factory=list)  # worth showing in a report: encoding problems, TLS trouble


def parse_endpoint(text: str) -> tuple[str, int] | None:
    match = _ENDPOINT.match(text)
    if not match:
        return None
    port = int(match["port"])
    if not 1 <= port <= 65535:
        return None
    return (match["ip6"] or match["host"]), port


STDIN = "-"


def expand_targets(targets: list[str], stdin: bytes | None = None) -> list[Unit]:
    """Files, every file under each folder (sorted, recursive, symbolic links to folders not followed), and
    ``host:port`` endpoints; ``-`` is ``stdin``, what the caller read from standard input. A target that is none of
    these is kept as a file unit so it is reported."""
    units: list[Unit] = []
    for target in targets:
        path = Path(target)
        if target == STDIN:
            units.append(Unit("file", "- (stdin)", data=stdin if stdin is not None else b""))
        elif path.is_dir():
            units += [Unit("file", str(found), found, explicit=False) for found in walk_files(path)]
        elif not path.exists() and (endpoint := parse_endpoint(target)) is not None:
            units.append(Unit("endpoint", target, host=endpoint[0], port=endpoint[1]))
        else:
            units.append(Unit("file", target, path))
    return units


def read_password_file(path: Path) -> bytes:
    """A PKCS#12 password from a file (never from argv); a trailing newline is not part of it."""
    from privca.keys.material import MAX_PASSPHRASE_BYTES

    try:
        with path.open("rb") as handle:  # bounded: never /dev/zero's worth
            data = handle.read(MAX_PASSPHRASE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--password-file {path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise UsageError(f"--password-file {path}: longer than {MAX_PASSPHRASE_BYTES} bytes; not a password file")
    return data.rstrip(b"\r\n")  # an empty password is allowed: many PKCS#12 exports use one


def load_unit(unit: Unit, *, password: bytes | None = None, timeout: float = DEFAULT_TIMEOUT) -> Loaded:
    if unit.kind == "endpoint":
        return fetch_endpoint(unit, timeout=timeout)
    return load_file(unit, password=password)


# --- files -------------------------------------------------------------------------------------------------------

def load_file(unit: Unit, *, password: bytes | None = None) -> Loaded:
    loaded = Loaded(unit)
    try:
        if unit.data is not None:
            data = unit.data
        else:
            assert unit.path is not None
            if not stat.S_ISREG(unit.path.stat().st_mode):  # a FIFO or device would block or never end
                return _not_certificate(loaded, "not a regular file")
            with unit.path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        loaded.error = "no such file, folder or host:port"
        return loaded
    except IsADirectoryError:
        loaded.error = "is a folder that cannot be listed"
        return loaded
    except OSError as exc:
        loaded.error = f"cannot read ({exc.strerror})"
        return loaded
    if len(data) > MAX_FILE_BYTES:
        return _not_certificate(loaded, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not a certificate file")
    try:
        certs, keys, notes = parse_certificates(data, password)
    except CertificateInputError as exc:
        return _not_certificate(loaded, exc.message)
    loaded.certs, loaded.key_publics, loaded.notes = certs, keys, notes
    loaded.ordered = not any(note in notes for note in (UNORDERED_PKCS7, UNORDERED_PKCS12))
    loaded.remarks = [note for note in notes if note.startswith(ENCODING_PROBLEM)]
    if not certs:
        if keys:  # a key file: it is paired with the certificate of the same name, nothing to audit itself
            loaded.skipped = True
            return loaded
        found = "; ".join(notes)
        return _not_certificate(loaded, "holds no certificate" + (f" ({found})" if found else ""))
    return loaded


def _not_certificate(loaded: Loaded, message: str) -> Loaded:
    """Named files and files that look like certificate files are reported; other files in a folder are skipped."""
    name = loaded.unit.name.lower()
    if loaded.unit.explicit or name.endswith(CERT_SUFFIXES):
        loaded.error = message
    else:
        loaded.skipped = True
        loaded.notes.append(message)
    return loaded


def read_certificate_file(path: Path, password: bytes | None = None) -> list[tuple[x509.Certificate, bytes]]:
    """The certificates in one file, in order; CertificateInputError naming the file when there are none."""
    loaded = load_file(Unit("file", str(path), path), password=password)
    if loaded.error:
        raise CertificateInputError(f"{path}: {loaded.error}")
    if not loaded.certs:
        raise CertificateInputError(f"{path}: holds no certificate")
    return loaded.certs


def parse_certificates(data: bytes, password: bytes | None = None
                       ) -> tuple[list[tuple[x509.Certificate, bytes]], list[object], list[str]]:
    """Certificates (with their DER), public keys of private keys, and notes from PEM, DER, PKCS#7 or PKCS#12.

    Raises CertificateInputError with a one-line reason when the data is none of these.
    """
    if not data.strip():
        raise CertificateInputError("the file is empty")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if b"-----BEGIN" in data:
            certs, keys, notes = _parse_pem(data)
        else:
            certs, keys, notes = _parse_der(data, password)
    for warning in caught:
        # cryptography warns about encodings RFC 5280 forbids (e.g. a negative serial number) but still loads
        notes.append(f"{ENCODING_PROBLEM}: {str(warning.message).split('.')[0]}")
    return certs, keys, notes


def _parse_pem(data: bytes) -> tuple[list[tuple[x509.Certificate, bytes]], list[object], list[str]]:
    from cryptography.hazmat.primitives.serialization import load_der_private_key, pkcs7

    certs: list[tuple[x509.Certificate, bytes]] = []
    keys: list[object] = []
    notes: list[str] = []
    found = pem.scan(data)
    if not found.blocks:
        raise CertificateInputError("PEM markers but no complete PEM block")
    if found.unterminated:
        notes.append(f"{found.unterminated} PEM block(s) without an END line ignored")
    for block in found.blocks:
        label, body, kind = block.label.encode(), block.body, block.label
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertificateInputError(f"PEM block {kind} is not valid base64") from None
        if kind in ("CERTIFICATE", "X509 CERTIFICATE"):
            try:
                certs.append((x509.load_der_x509_certificate(der), der))
            except ValueError as exc:
                raise CertificateInputError(f"a CERTIFICATE block is not a valid certificate ({_short(exc)})") from None
        elif kind in ("PKCS7", "CERTIFICATE CHAIN"):
            notes.append(UNORDERED_PKCS7)
            try:
                certs += [(c, c.public_bytes(Encoding.DER)) for c in pkcs7.load_der_pkcs7_certificates(der)]
            except ValueError as exc:
                raise CertificateInputError(f"a PKCS7 block is not a valid certificate bundle ({_short(exc)})") from None
        elif kind in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
            if kind != "PRIVATE KEY":  # traditional OpenSSL keys: let the PEM loader read the legacy framing
                public = _public_of_pem_key(b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label, body, label), notes)
            else:
                try:
                    public = load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True).public_key()
                except (ValueError, TypeError):
                    public = None
                    notes.append("a private key could not be read")
            if public is not None:
                keys.append(public)
        elif kind == "ENCRYPTED PRIVATE KEY":
            notes.append("encrypted private key: not compared with the certificate")
        else:
            notes.append(f"{kind} block ignored")
    return certs, keys, notes


def _public_of_pem_key(pem: bytes, notes: list[str]) -> object | None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if b"ENCRYPTED" in pem.split(b"\n\n")[0]:
        notes.append("encrypted private key: not compared with the certificate")
        return None
    try:
        return load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True).public_key()
    except (ValueError, TypeError):
        notes.append("a private key could not be read")
        return None


def _parse_der(data: bytes, password: bytes | None) -> tuple[list[tuple[x509.Certificate, bytes]], list[object], list[str]]:
    from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

    if data[:1] != b"\x30":
        raise CertificateInputError("not a certificate file (PEM, DER, PKCS#7 or PKCS#12)")
    try:
        return [(x509.load_der_x509_certificate(data), data)], [], []
    except ValueError:
        pass
    try:
        return [(c, c.public_bytes(Encoding.DER)) for c in pkcs7.load_der_pkcs7_certificates(data)], [], [UNORDERED_PKCS7]
    except ValueError:
        pass
    if not _looks_like_pkcs12(data):
        raise CertificateInputError("not a certificate file (PEM, DER, PKCS#7 or PKCS#12)")
    iterations = _pkcs12_mac_iterations(data)
    if iterations is None:
        raise CertificateInputError("PKCS#12 file is truncated or damaged (its structure does not add up)")
    if iterations > MAX_PKCS12_MAC_ITERATIONS:
        raise CertificateInputError(f"PKCS#12 file asks for {iterations:,} password rounds (more than "
                                    f"{MAX_PKCS12_MAC_ITERATIONS:,}); refusing to spend that long on it; export it "
                                    "again with ordinary settings")
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            bundle = pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
        certs = [bundle.cert.certificate] if bundle.cert is not None else []
        certs += [extra.certificate for extra in bundle.additional_certs]
        keys: list[object] = [bundle.key.public_key()] if bundle.key is not None else []
        return [(c, c.public_bytes(Encoding.DER)) for c in certs], keys, [UNORDERED_PKCS12]
    if password is None:
        raise CertificateInputError("PKCS#12 file is password-protected; give the password with --password-file")
    raise CertificateInputError("PKCS#12: wrong password (or a damaged file)")


def _der_item(data: bytes, at: int) -> tuple[int, int, int] | None:
    """(tag, start of content, end of content) of the DER item at ``at``; None if it runs past the data."""
    if at + 2 > len(data):
        return None
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        start, length = at + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + 2 + count > len(data):
            return None
        start, length = at + 2 + count, int.from_bytes(data[at + 2:at + 2 + count], "big")
    return (tag, start, start + length) if start + length <= len(data) else None


def _pkcs12_mac_iterations(data: bytes) -> int | None:
    """The MAC iteration count of a PFX (1 without macData), read before any password is tried; None when the
    structure is cut off or malformed.

    PFX ::= SEQUENCE { version, authSafe ContentInfo, macData MacData OPTIONAL } and MacData ::= SEQUENCE { mac
    DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 } (RFC 7292 section 4).
    """
    pfx = _der_item(data, 0)
    if pfx is None or pfx[0] != 0x30:
        return None
    version = _der_item(data, pfx[1])
    auth_safe = _der_item(data, version[2]) if version is not None else None
    if auth_safe is None:
        return None
    if auth_safe[2] >= pfx[2]:
        return 1
    mac_data = _der_item(data, auth_safe[2])
    if mac_data is None or mac_data[0] != 0x30:
        return None
    at, fields = mac_data[1], []
    while at < mac_data[2]:
        item = _der_item(data, at)
        if item is None:
            return None
        fields.append(item)
        at = item[2]
    if len(fields) < 3:
        return 1 if len(fields) == 2 else None
    tag, start, end = fields[2]
    if tag != 0x02 or not 0 < end - start <= 8:
        return None
    return int.from_bytes(data[start:end], "big", signed=True)


def _looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... } (RFC 7292 section 4)."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    length_octets = data[1] & 0x7F if data[1] & 0x80 else 0
    start = 2 + length_octets
    return data[start:start + 3] == b"\x02\x01\x03"


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


# --- live TLS endpoints ---------------------------------------------------------------------------------------

def fetch_endpoint(unit: Unit, *, timeout: float = DEFAULT_TIMEOUT) -> Loaded:
    """Connect to ``host:port``, do a TLS handshake without verifying anything, and keep the chain it serves.

    Certificate verification is off on purpose: the point is to read what the endpoint presents, however broken.
    Nothing is sent after the handshake. The served chain comes from OpenSSL's peer chain
    (``SSL_get_peer_cert_chain``), which CPython exposes as ``get_unverified_chain`` (private before 3.13,
    public since); without it only the leaf can be read, and the report says so.
    """
    return parse_served(*handshake(unit, timeout=timeout))


def handshake(unit: Unit, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[Loaded, list[bytes]]:
    """The network half of ``fetch_endpoint``: the served chain as DER, or the error. It touches no shared
    state (no warnings filters), so many can run at once in threads; ``parse_served`` finishes in one thread."""
    loaded = Loaded(unit)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:  # read old endpoints too (SHA-1 or small keys): this is an inventory, not a trust decision
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    server_name = unit.host if parse_ip(unit.host) is None else None
    try:
        raw = socket.create_connection((unit.host, unit.port), timeout=timeout)
    except socket.gaierror:
        loaded.error = f"cannot resolve host {unit.host}"
        return loaded, []
    except ConnectionRefusedError:
        loaded.error = "connection refused (nothing listens on that port)"
        return loaded, []
    except (socket.timeout, TimeoutError):
        loaded.error = f"no answer within {timeout:g} s (port filtered or host down)"
        return loaded, []
    except OSError as exc:
        loaded.error = f"cannot connect ({exc.strerror or exc})"
        return loaded, []
    handshake_error = None
    with raw:
        tls = context.wrap_socket(raw, server_hostname=server_name, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (socket.timeout, TimeoutError):
            handshake_error = f"no TLS answer within {timeout:g} s (not a TLS port?)"
        except ssl.SSLError as exc:
            handshake_error = f"TLS handshake failed ({exc.reason or _short(exc)})"
        except OSError as exc:
            handshake_error = f"connection closed during the TLS handshake ({exc.strerror or _short(exc)})"
        # A server that requires a client certificate may abort the handshake (TLS 1.2) after it has sent its
        # own chain: the chain is still there to read.
        chain = _served_chain(tls, loaded.remarks)
        tls.close()
    if not chain:
        loaded.error = handshake_error or "the endpoint presented no certificate"
        return loaded, []
    if handshake_error:
        loaded.remarks.append(f"{handshake_error}; the certificates it sent were read")
    return loaded, chain


def parse_served(loaded: Loaded, chain: list[bytes]) -> Loaded:
    """The certificates of a served chain (from ``handshake``), with cryptography's encoding warnings as remarks."""
    if loaded.error is not None:
        return loaded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for der in chain:
            try:
                loaded.certs.append((x509.load_der_x509_certificate(der), der))
            except ValueError as exc:
                loaded.remarks.append(f"a served certificate cannot be parsed ({_short(exc)})")
    loaded.remarks += [f"{ENCODING_PROBLEM}: {str(w.message).split('.')[0]}" for w in caught]
    if not loaded.certs:
        loaded.error = "the endpoint's certificates cannot be parsed"
    return loaded


def _served_chain(tls: ssl.SSLSocket, notes: list[str]) -> list[bytes]:
    sslobj = getattr(tls, "_sslobj", None)
    getter = getattr(tls, "get_unverified_chain", None) or getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
        except (ValueError, ssl.SSLError, AttributeError):
            chain = []
        if chain:
            return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
    try:
        leaf = tls.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        leaf = None
    if leaf:
        notes.append("this Python cannot read the served chain; only the endpoint's own certificate was read")
        return [leaf]
    return []


def parse_ip(text: str) -> object | None:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def key_file_base(name: str) -> str | None:
    """``expc`` for ``expc.key``, ``expc.key.pem`` or ``expc-key.pem``; None for names that are not key files."""
    lower = name.lower()
    for suffix in KEY_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def cert_file_base(name: str) -> str:
    """``expc`` for ``expc.pem``, ``expc.crt`` or ``expc.cer``."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in CERT_SUFFIXES else name


__all__ = ["DEFAULT_TIMEOUT", "Loaded", "Unit", "expand_targets", "fetch_endpoint", "load_unit",
           "parse_certificates", "parse_endpoint", "read_certificate_file", "read_password_file"]
