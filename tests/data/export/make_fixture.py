"""Write cas.json: fixed CA certificates for the trust-bundle golden tests (tests/test_export.py).

Run only on purpose (``python tests/data/export/make_fixture.py``), then refresh the goldens with
``PRIVCA_UPDATE_GOLDEN=1 pytest tests/test_export.py``. The keys are thrown away: the goldens need the
certificates only, so the same committed certificates always render the same bundles.

The CAs model a rotation in progress at the tests' pinned time (2026-11-29):
- root-1 (RSA) and issuing-1 (RSA, retired): the first generation, both publishing CRLs;
- root-2 (P-384) and issuing-2 (P-256): the new generation, without CRLs;
- issuing-0: expired in June 2026; issuing-x: revoked. Neither belongs in any bundle.
- root-2-cross: root-2's name and key signed by root-1. The ledger cannot hold it yet, so it is used only by
  tests that build the trust context from rows directly.
The "basic" scenario is root-1 and issuing-1 (active) alone: a freshly initialised CA.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from privca.issuance.builder import ca_builder, revocation_pointers

HERE = Path(__file__).parent
CRL_BASE = "http://pki.example.test/crl"


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Example Ltd"),
                      x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def make(cn, key, issuer_cert, issuer_key, start, end, serial, crl=None, path_length=None, subject_key=None):
    subject = name(cn)
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    issuer_ski = (issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
                  if issuer_cert is not None else None)
    builder = ca_builder(subject, issuer_name, (subject_key or key).public_key(), serial, when(start), when(end),
                         issuer_ski, path_length)
    builder = revocation_pointers(builder, crl, None)
    signer = issuer_key if issuer_key is not None else key
    digest = hashes.SHA384() if isinstance(signer, ec.EllipticCurvePrivateKey) and signer.curve.key_size >= 384 \
        else hashes.SHA256()
    return builder.sign(signer, digest)


def main() -> None:
    rsa_root, rsa_issuing = (rsa.generate_private_key(65537, 2048) for _ in range(2))
    rsa_old, rsa_revoked = (rsa.generate_private_key(65537, 2048) for _ in range(2))
    ec_root, ec_issuing = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1())

    root1 = make("Example UC Root CA", rsa_root, None, None, "2026-01-01", "2045-12-31T23:59:59", 0x1001)
    issuing1 = make("Example UC Issuing CA 1", rsa_issuing, root1, rsa_root, "2026-01-01", "2035-12-31T23:59:59",
                    0x1002, crl=f"{CRL_BASE}/root-1.crl", path_length=0)
    issuing0 = make("Example UC Issuing CA 0", rsa_old, root1, rsa_root, "2025-01-01", "2026-06-30T23:59:59",
                    0x1000, crl=f"{CRL_BASE}/root-1.crl", path_length=0)
    issuingx = make("Example UC Issuing CA X", rsa_revoked, root1, rsa_root, "2026-03-01", "2035-12-31T23:59:59",
                    0x1003, crl=f"{CRL_BASE}/root-1.crl", path_length=0)
    root2 = make("Example UC Root CA 2", ec_root, None, None, "2026-10-01", "2046-09-30T23:59:59", 0x2001)
    issuing2 = make("Example UC Issuing CA 2", ec_issuing, root2, ec_root, "2026-10-01", "2036-09-30T23:59:59",
                    0x2002, path_length=0)
    cross = make("Example UC Root CA 2", None, root1, rsa_root, "2026-10-01", "2045-12-31T23:59:59", 0x1004,
                 subject_key=ec_root)

    def row(ca_id, ca_name, role, generation, parent, status, key_type, cert, crl_url):
        return {"id": ca_id, "name": ca_name, "role": role, "generation": generation, "parent_id": parent,
                "status": status, "key_type": key_type, "crl_url": crl_url,
                "pem": cert.public_bytes(Encoding.PEM).decode()}

    rows = [
        row(1, "root-1", "root", 1, None, "active", "rsa:2048", root1, f"{CRL_BASE}/root-1.crl"),
        row(2, "issuing-0", "issuing", 0, 1, "retired", "rsa:2048", issuing0, f"{CRL_BASE}/issuing-0.crl"),
        row(3, "issuing-1", "issuing", 1, 1, "retired", "rsa:2048", issuing1, f"{CRL_BASE}/issuing-1.crl"),
        row(4, "issuing-x", "issuing", 2, 1, "revoked", "rsa:2048", issuingx, f"{CRL_BASE}/issuing-x.crl"),
        row(5, "root-2", "root", 2, None, "active", "ec:secp384r1", root2, None),
        row(6, "issuing-2", "issuing", 3, 5, "active", "ec:secp256r1", issuing2, None),
    ]
    cross_row = row(7, "root-2-cross", "cross", 2, 1, "active", "ec:secp384r1", cross, None)
    (HERE / "cas.json").write_text(json.dumps({"rotation": rows, "cross": cross_row}, indent=1) + "\n")


if __name__ == "__main__":
    main()
