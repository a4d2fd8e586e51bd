"""The CA engine: creates the root and issuing CAs, and loads the active issuer for signing.

A CA is a ledger record (``privca.ledger.records.CA``: its certificate, status, CRL settings) plus a key: an encrypted key file in the store or a
key in a PKCS#11 token (``privca.keys.keystore`` makes and opens both). The issuer key is used in exactly one place,
``Issuer.sign``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from privca.errors import ClockError, StoreError, UsageError
from privca.keys.material import CA_KEY_TYPES, KeySpec
from privca.keys.keystore import (CASecrets, NewCAKey, SecretSource, TokenChoice, create_ca_key, describe_key_ref,
                                  load_ca_key, seal_with)
from privca.ledger import cas, events
from privca.ledger.records import CA, CARole, CAStatus, iso

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

    from privca.ledger.store import Store

DEFAULT_ROOT_KEY = "rsa:4096"
DEFAULT_ISSUING_KEY = "rsa:3072"
DEFAULT_ROOT_DAYS = 7305  # 20 years: a root is a long-lived trust anchor that every peer must be given
DEFAULT_ISSUING_DAYS = 3652  # 10 years: half the root's, so it is rotated at least once under one root


def signature_hash(key: Any) -> Any:
    """SHA-384 for P-384 keys (matching strength), SHA-256 otherwise (what every Cisco product accepts)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def fingerprint(cert: "x509.Certificate", algorithm: str = "sha256") -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.new(algorithm, cert.public_bytes(Encoding.DER)).hexdigest()


def pem_of(cert: "x509.Certificate") -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


def serial_hex(serial: int) -> str:
    """Serials are shown and stored as lowercase hex without separators."""
    return format(serial, "x")


def parse_serial(text: str) -> str:
    """A serial as people type it (hex, maybe with colons, ``0x`` or leading zeros) in its stored form."""
    wanted = text.strip().lower().replace(":", "").removeprefix("0x").lstrip("0") or "0"
    if any(ch not in "0123456789abcdef" for ch in wanted):
        from privca.common.names import printable

        raise UsageError(f"serial {printable(text)!r}: must be hexadecimal, as privca list shows it")
    return wanted


def check_url(url: str | None, option: str) -> str | None:
    """``url`` as it goes into certificates (see privca/common/urls.py), or UsageError naming the option.

    Expressway fetches CRLs over HTTP(S) (Expressway certificate guide, "Manage CRLs"); what goes into a
    certificate stays there until it expires, so a malformed URL is refused now rather than discovered later.
    """
    from privca.common.names import printable
    from privca.common.urls import normalized_url

    if url is None:
        return None
    try:
        return normalized_url(url)
    except ValueError as exc:
        raise UsageError(f"{option} {printable(url)!r}: {exc}") from None


def crl_file_name(ca_name: str) -> str:
    return f"{ca_name}.crl"


def crl_url_for(base: str | None, ca_name: str) -> str | None:
    """The URL a CA's CRL is published at: ``<base>/<ca name>.crl``."""
    return f"{base.rstrip('/')}/{crl_file_name(ca_name)}" if base else None


@dataclass
class Issuer:
    """A CA ready to sign: its ledger record, certificate and key (decrypted, or a handle on a token key)."""

    ca: CA
    cert: "x509.Certificate"
    key: "CertificateIssuerPrivateKeyTypes"

    @property
    def id(self) -> int:
        return self.ca.id

    @property
    def name(self) -> str:
        return self.ca.name

    @property
    def algorithm(self) -> str:
        return self.ca.algorithm

    def sign(self, builder: Any) -> Any:
        """Sign a certificate or CRL builder with this CA's key."""
        return builder.sign(self.key, signature_hash(self.key))


def check_signing_clock(store: "Store", ca: CA, now: datetime) -> None:
    """Refuse to sign with ``ca`` when the clock cannot be right (ClockError), before any key is unlocked: before
    the CA's own notBefore (certificates valid in 1970, or starting before their issuer; CRLs stale when made),
    or clearly before the newest event on record."""
    if now < ca.not_before:
        raise ClockError(f"clock: this machine says {iso(now)}, before CA {ca.name} even begins "
                         f"({iso(ca.not_before)}); nothing signed; fix the clock (NTP) and run again")
    problem = events.clock_problem(now, events.newest_at(store.ledger))
    if problem is not None:
        raise ClockError(f"{problem}; nothing signed")


def load_issuer(store: "Store", ca: CA, secrets: CASecrets | SecretSource, *, now: datetime | None = None) -> Issuer:
    """``ca`` ready to sign; ``secrets`` is a CASecrets, or just the passphrase for key files.

    With ``now`` (every command that signs), the clock is checked first (``check_signing_clock``). From then on
    the command's writes to the ledger are sealed with this key (``privca.ledger.chain``).
    """
    if now is not None:
        check_signing_clock(store, ca, now)
    key = load_ca_key(store, ca, CASecrets.of(secrets))
    cert = ca.certificate
    if key.public_key() != cert.public_key():
        raise StoreError(f"{describe_key_ref(store, ca.key_ref)}: key does not match the certificate of CA {ca.name}")
    seal_with(store, ca, key)
    return Issuer(ca, cert, key)


def seal_with_issuer(store: "Store", issuer: Issuer) -> None:
    """Seal the store's next writes with an issuer unlocked earlier (a service's, on another ``Store``)."""
    seal_with(store, issuer.ca, issuer.key)


def active_issuing(store: "Store") -> CA:
    found = cas.active(store.require_ca(), CARole.ISSUING)
    if found is None:
        raise StoreError(f"{store.path}: no active issuing CA; run: privca rotate intermediate")
    return found


def crl_base_of(ca: CA) -> str | None:
    """The CRL base URL a CA was set up with (its own CRL URL is ``<base>/<name>.crl``)."""
    url = ca.crl_url
    suffix = "/" + crl_file_name(ca.name)
    return url[: -len(suffix)] if url and url.endswith(suffix) else None


def root_ca_certificate(subject: "x509.Name", key: "CertificateIssuerPrivateKeyTypes", not_before: datetime,
                        not_after: datetime) -> "x509.Certificate":
    """A self-signed root: no path length limit, no CRL pointer (nothing above it revokes it)."""
    from cryptography import x509

    from privca.issuance.builder import ca_builder

    builder = ca_builder(subject, subject, key.public_key(), x509.random_serial_number(), not_before, not_after,
                         None, None)
    return builder.sign(key, signature_hash(key))


def ca_certificate_under(parent: "x509.Certificate", parent_key: "CertificateIssuerPrivateKeyTypes",
                         subject: "x509.Name", public_key: Any, not_before: datetime, not_after: datetime,
                         path_length: int | None, parent_crl_url: str | None) -> "x509.Certificate":
    """A CA certificate signed by ``parent``: an issuing CA (``path_length`` 0) or a cross-certificate (None).

    Its CRL distribution point is the parent's CRL, which is where the parent would revoke it.
    """
    from cryptography import x509

    from privca.issuance.builder import ca_builder, revocation_pointers

    parent_ski = parent.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = ca_builder(subject, parent.subject, public_key, x509.random_serial_number(), not_before, not_after,
                         parent_ski, path_length)
    builder = revocation_pointers(builder, parent_crl_url, None)
    return builder.sign(parent_key, signature_hash(parent_key))


@contextmanager
def undone_on_failure() -> Iterator[list[NewCAKey]]:
    """Collect the keys of CAs being created; if anything fails before they are on record, undo them (delete the
    key file, or the key generated in the token), so a key never exists without its CA in the ledger. (A kill
    leaves that to the journal each key file is saved with, see ``NewCAKey``.)"""
    keys: list[NewCAKey] = []
    try:
        yield keys
    except BaseException:
        for key in keys:
            key.discard()
        raise
    for key in keys:
        key.done()


def new_ca(name: str, role: CARole, generation: int, parent_id: int | None, cert: "x509.Certificate",
           key: NewCAKey, crl_base: str | None, ocsp_url: str | None, now: datetime) -> CA:
    """The record of a CA about to be created (``cas.insert`` gives it its id)."""
    return CA(
        id=0, name=name, role=role, generation=generation, parent_id=parent_id,
        subject=cert.subject.rfc4514_string(), serial=serial_hex(cert.serial_number), key_type=str(key.spec),
        key_ref=key.key_ref, not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        status=CAStatus.ACTIVE, fingerprint_sha256=fingerprint(cert), crl_url=crl_url_for(crl_base, name),
        ocsp_url=ocsp_url, created_at=now.replace(microsecond=0), pem=pem_of(cert),
    )


def ca_name(common_name: str, organization: str | None) -> "x509.Name":
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    if not common_name.strip() or any(not ch.isprintable() for ch in common_name):
        raise UsageError(f"CA common name {common_name!r}: must be printable text")
    if len(common_name) > 64:
        raise UsageError(f"CA common name {common_name!r}: longer than 64 characters (RFC 5280 ub-common-name)")
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        if any(not ch.isprintable() for ch in organization) or len(organization) > 64:
            raise UsageError(f"organisation {organization!r}: must be printable text of at most 64 characters")
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _init_key_specs(root_cn: str, issuing_cn: str, key_type: str | None, root_days: int, issuing_days: int,
                    root_key_label: str | None, issuing_key_label: str | None) -> tuple[KeySpec | None, KeySpec | None]:
    """Check ``init_ca``'s choices against each other; the key specs of the root and the issuing CA (None for an
    existing token key, which has its own type)."""
    if root_cn.strip().casefold() == issuing_cn.strip().casefold():
        # Expressway stops at the first CN match and CUCM replaces trust certificates by subject.
        raise UsageError("--root-cn and --issuing-cn: must differ; Cisco trust stores match CAs by name")
    # An existing token key has its own type; a key type given with it is a check, not a default.
    root_spec = None if root_key_label and not key_type else KeySpec.parse(key_type or DEFAULT_ROOT_KEY, CA_KEY_TYPES)
    issuing_spec = (None if issuing_key_label and not key_type
                    else KeySpec.parse(key_type or DEFAULT_ISSUING_KEY, CA_KEY_TYPES))
    if not 1 <= issuing_days < root_days <= 36500:
        raise UsageError("--issuing-days and --root-days: need 1 <= issuing days < root days <= 36500")
    if root_key_label is not None and root_key_label == issuing_key_label:
        raise UsageError("--root-key-label and --issuing-key-label: must name two different keys")
    return root_spec, issuing_spec


def init_ca(
    store: "Store",
    secrets: CASecrets | SecretSource,
    *,
    root_cn: str,
    issuing_cn: str,
    org: str | None = None,
    key_type: str | None = None,
    root_days: int = DEFAULT_ROOT_DAYS,
    issuing_days: int = DEFAULT_ISSUING_DAYS,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    token: TokenChoice | None = None,
    root_key_label: str | None = None,
    issuing_key_label: str | None = None,
    now: datetime,
) -> list[CA]:
    """Create a self-signed root and an issuing CA (pathlen 0) signed by it. Refuses if the store has a CA.

    The keys are encrypted files in the store, or with ``token`` keys in that PKCS#11 token: generated there, or
    the existing ones labelled ``root_key_label`` / ``issuing_key_label``.
    """
    from privca.issuance.builder import validity

    root_spec, issuing_spec = _init_key_specs(root_cn, issuing_cn, key_type, root_days, issuing_days,
                                              root_key_label, issuing_key_label)
    crl_base = check_url(crl_url, "--crl-url")
    ocsp_url = check_url(ocsp_url, "--ocsp-url")
    root_name, issuing_name = ca_name(root_cn, org), ca_name(issuing_cn, org)
    if store.is_initialised():
        if cas.exists(store.ledger):
            raise StoreError(f"{store.path}: already holds a CA; privca never overwrites one (use another --store)")
        from privca.ledger.journal import recover

        recover(store)  # an init killed before its commit left key files: undo them before making new ones

    unlock = CASecrets.of(secrets)
    with undone_on_failure() as keys:
        root = create_ca_key(store, "root-1", root_spec, unlock, token=token, key_label=root_key_label)
        keys.append(root)
        issuing = create_ca_key(store, "issuing-1", issuing_spec, unlock, token=token, key_label=issuing_key_label)
        keys.append(issuing)
        root_cert = root_ca_certificate(root_name, root.key, *validity(now, root_days))
        issuing_cert = ca_certificate_under(root_cert, root.key, issuing_name, issuing.key.public_key(),
                                            *validity(now, issuing_days), 0, crl_url_for(crl_base, "root-1"))
        ledger = store.create()
        with ledger.write():
            if cas.exists(ledger):
                raise StoreError(f"{store.path}: already holds a CA; privca never overwrites one")
            root_ca = cas.insert(ledger, new_ca("root-1", CARole.ROOT, 1, None, root_cert, root, crl_base, None, now))
            issuing_ca = cas.insert(ledger, new_ca("issuing-1", CARole.ISSUING, 1, root_ca.id, issuing_cert, issuing,
                                                   crl_base, ocsp_url, now))
            seal_with(store, root_ca, root.key)  # the first seal: the root vouches for the ledger's first state
            for key in keys:
                key.save()
            events.record(ledger, now, "init", {"root": root_ca.subject, "issuing": issuing_ca.subject,
                                                "root_fingerprint": root_ca.fingerprint_sha256,
                                                "issuing_fingerprint": issuing_ca.fingerprint_sha256,
                                                "root_key": root.key_ref, "issuing_key": issuing.key_ref})
    return [root_ca, issuing_ca]
