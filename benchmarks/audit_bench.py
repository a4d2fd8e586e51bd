"""Benchmark: privca audit of a folder of 10,000 certificates against a shell loop of
``openssl x509 -noout -ext extendedKeyUsage`` over the same files, measured in the same run.

The shell loop is what an administrator writes by hand today, and it only prints EKUs; privca also builds each
chain, verifies each signature, classifies the root and renders the whole report as JSON. The loop is timed on
a random sample (500 files by default) and its rate extrapolated to the whole folder; the report says so.

    .venv/bin/python benchmarks/audit_bench.py [--count 10000] [--sample 500]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TARGET_RATIO = 20.0


def build_folder(folder: Path, count: int, now: datetime) -> None:
    """A private root and issuing CA, and ``count`` leaves with a realistic mix of EKUs, names and expiry."""
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Ltd"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(subject: x509.Name, issuer_name: x509.Name, key: ec.EllipticCurvePrivateKey,
           signer: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=10))
                .not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(signer, hashes.SHA256()))

    root_key, issuing_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = ca(name("Bench Root CA"), name("Bench Root CA"), root_key, root_key)
    issuing = ca(name("Bench Issuing CA"), root.subject, issuing_key, root_key)
    (folder / "ca").mkdir(parents=True)
    (folder / "ca" / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (folder / "ca" / "issuing.pem").write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    ekus = [[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], [ExtendedKeyUsageOID.SERVER_AUTH],
            [ExtendedKeyUsageOID.CLIENT_AUTH]]
    randomness = random.Random(6)
    for index in range(count):
        host = f"node{index:05d}.uc.example.com"
        cert = (x509.CertificateBuilder().subject_name(name(host)).issuer_name(issuing.subject)
                .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=30))
                .not_valid_after(now + timedelta(days=randomness.randint(-20, 700)))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage(ekus[index % 3]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .sign(issuing_key, hashes.SHA256()))
        sub = folder / f"site{index % 50:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{host}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def time_privca(folder: Path, now: datetime) -> tuple[float, int]:
    from privca.inspect.audit import audit

    start = time.perf_counter()
    report = audit([str(folder)], now=now)
    text = json.dumps(report.to_dict())
    elapsed = time.perf_counter() - start
    assert report.errors == [] and len(text) > 0
    return elapsed, len(report.certificates)


def time_openssl_loop(files: list[Path]) -> float:
    script = 'for f in "$@"; do openssl x509 -noout -ext extendedKeyUsage -in "$f" > /dev/null; done'
    start = time.perf_counter()
    subprocess.run(["bash", "-c", script, "loop", *map(str, files)], check=True)
    return time.perf_counter() - start


def measure(count: int, sample_size: int) -> tuple[float, float, int, int]:
    """(privca certs/s, openssl loop certs/s, certificates audited, files sampled for the loop)."""
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="privca-bench-") as tmp:
        folder = Path(tmp) / "estate"
        started = time.perf_counter()
        build_folder(folder, count, now)
        print(f"built {count} certificates (+2 CAs) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        files = sorted(folder.rglob("*.pem"))
        sample = random.Random(1).sample(files, min(sample_size, len(files)))
        time_privca(folder, now)  # warm the page cache and imports for both contenders alike
        loop_seconds = time_openssl_loop(sample)
        privca_seconds, audited = time_privca(folder, now)
    return audited / privca_seconds, len(sample) / loop_seconds, audited, len(sample)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=500)
    args = parser.parse_args()
    privca_rate, loop_rate, audited, sampled = measure(args.count, args.sample)
    privca_seconds, loop_seconds = audited / privca_rate, sampled / loop_rate
    ratio = privca_rate / loop_rate
    print(f"openssl x509 shell loop: {sampled} files in {loop_seconds:.2f} s = {loop_rate:,.0f} certs/s "
          f"(timed on a sample of {sampled}; extrapolated to {audited} files: {audited / loop_rate:.1f} s)")
    print(f"privca audit (chains, signatures, roots, verdicts, JSON): {audited} certificates in "
          f"{privca_seconds:.2f} s = {privca_rate:,.0f} certs/s")
    print(f"ratio: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x): {'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
