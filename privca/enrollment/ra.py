"""The SCEP registration authority: its own RSA key and a certificate from the issuing CA (profile ``scep-ra``).

Devices encrypt their requests to the RA certificate and check the RA's signature on every reply, so the CA key,
which may live in an HSM that cannot do RSA decryption for SCEP, only ever signs certificates. The RA certificate
is an ordinary certificate in the ledger (revocable, on the CRL); its key is encrypted with the CA passphrase in
``<store>/enroll/ra-<serial>.key``, owner-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privca.errors import EnrollmentError
from privca.ledger.enrollment import latest_valid_with_profile

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from privca.keys.keystore import CASecrets, SecretSource
    from privca.keys.material import Passphrase
    from privca.ledger.store import Store

RA_PROFILE = "scep-ra"
RA_FOLDER = "enroll"


@dataclass(frozen=True)
class RegistrationAuthority:
    cert: "x509.Certificate"
    key: "RSAPrivateKey"
    serial: str


def ra_key_path(store: "Store", serial: str) -> Path:
    return store.path / RA_FOLDER / f"ra-{serial}.key"


def create_ra(store: "Store", secrets: "CASecrets | SecretSource", *, now: datetime, common_name: str,
              key_size: int = 2048) -> dict[str, Any]:
    """A new RA key and certificate, issued like any certificate (ledger, event); the key saved encrypted."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from privca.authority.signer import PlannedCertificate, sign_and_record
    from privca.common.fsutil import ensure_private_dir, write_temp
    from privca.issuance.policy import check
    from privca.issuance.profiles import load_profile
    from privca.keys.keystore import CASecrets
    from privca.keys.material import encrypt_private_key

    if key_size not in (2048, 3072):
        raise EnrollmentError(f"--key-size {key_size}: the RA key is RSA 2048 or 3072 bits")
    profile = load_profile(RA_PROFILE, store.profiles_dir)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    der = csr.public_bytes(Encoding.DER)
    request, problems = check(csr, der, "RA", profile)
    if request is None:
        raise EnrollmentError(f"RA certificate: {'; '.join(problems)}")
    unlock = CASecrets.of(secrets)
    passphrase: Passphrase = unlock.get_passphrase()
    folder = store.path / RA_FOLDER
    ensure_private_dir(folder)
    temps: list[Path] = []

    def save_key(ledger: Any, records: list[Any]) -> None:
        # Written under a temporary name inside the transaction, renamed once it commits: a failed commit leaves
        # no key, and a key file always has its certificate on record.
        final = ra_key_path(store, records[0].serial)
        temps.append(write_temp(final, encrypt_private_key(key, passphrase), mode=0o600))
        temps.append(final)

    try:
        records = sign_and_record(store, [PlannedCertificate(request, None, None, None, csr_der=der)], unlock,
                                  now=now, in_transaction=save_key)
    except BaseException:
        if temps:
            temps[0].unlink(missing_ok=True)
        raise
    os.replace(temps[0], temps[1])
    record = records[0].to_json()
    record["key_path"] = str(temps[1])
    return record


def load_ra(store: "Store", passphrase: "Passphrase", now: datetime) -> RegistrationAuthority:
    """The newest valid RA of the active issuing CA, with its key decrypted."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from privca.authority.ca import active_issuing
    from privca.keys.material import load_private_key

    issuing = active_issuing(store)
    found = latest_valid_with_profile(store.ledger, RA_PROFILE, now)
    if found is None or found.issuer_id != issuing.id:
        raise EnrollmentError(f"{store.path}: no SCEP RA certificate from {issuing.name}; run: privca enroll ra")
    path = ra_key_path(store, found.serial)
    if not path.exists():
        raise EnrollmentError(f"{path}: the RA key of certificate {found.serial} is missing; run: privca enroll ra")
    key = load_private_key(path, passphrase)
    cert = found.certificate
    if not isinstance(key, RSAPrivateKey) or key.public_key() != cert.public_key():
        raise EnrollmentError(f"{path}: does not match RA certificate {found.serial}")
    return RegistrationAuthority(cert, key, found.serial)
