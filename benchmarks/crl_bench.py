"""CRL with 100,000 revoked entries: `privca crl` against `openssl ca -gencrl`, measured side by side.

Both sides sign the same 100,000 revocations (same serials, dates and reasons) with the same encrypted RSA-3072
issuing CA key and write the CRL to disk:

- privca: the `privca crl --out DIR` command as a fresh process (reads the ledger, unlocks the root and issuing
  keys, signs both CAs' CRLs, records them in the ledger, writes DER and PEM). The in-process library call
  (`issue_crls`) and the bare `build_crl` are timed as well, to show where the time goes.
- openssl: `openssl ca -gencrl` as a fresh process, from an index.txt with the same 100,000 revoked lines and a
  throwaway CA configuration in a temporary folder.

Target: privca takes at most 1.5x openssl's time. Run: .venv/bin/python benchmarks/crl_bench.py [--entries N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509

PASSPHRASE = "benchmark passphrase 2026"
TARGET_RATIO = 1.5
PEM_SIZED = "x" * 2000  # ledger rows carry the certificate PEM (~2 KB for RSA-2048 with SANs)
REASONS = ["keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", "certificateHold"]
OPENSSL_CONFIG = """\
[ ca ]
default_ca = bench

[ bench ]
dir = {dir}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key.pem
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
unique_subject = no
policy = any

[ any ]
commonName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def make_store(folder: Path, entries: int, now: datetime) -> tuple[Path, list[tuple[str, str, str]]]:
    """A privca store whose issuing CA has ``entries`` revoked certificates in the ledger."""
    from privca.authority.ca import init_ca
    from privca.keys.material import Passphrase
    from privca.ledger.db import iso
    from privca.ledger.store import Store

    store = Store(folder / "store")
    init_ca(store, Passphrase(PASSPHRASE.encode()), root_cn="Bench Root CA", issuing_cn="Bench Issuing CA",
            crl_url="http://pki.example.test/crl", now=now)
    from privca.ledger import cas, certificates
    from privca.ledger.records import CertificateStatus, IssuedCertificate, RevocationReason

    ledger = store.ledger
    issuing = cas.active(ledger, "issuing")
    assert issuing is not None
    not_after = now + timedelta(days=397)
    revoked = []
    records = []
    for n in range(entries):
        serial = format(secrets.randbits(159) | 1 << 158, "x")
        revoked_at = (now - timedelta(seconds=n * 7)).replace(microsecond=0)
        reason = REASONS[n % len(REASONS)]
        revoked.append((serial, iso(revoked_at), reason))
        records.append(IssuedCertificate(
            id=0, serial=serial, issuer_id=issuing.id, profile="expressway-c", subject=f"CN=node{n}.example.com",
            sans=(), eku=(), key_type="rsa", key_size="2048", not_before=now - timedelta(days=30), not_after=not_after,
            status=CertificateStatus.HOLD if reason == "certificateHold" else CertificateStatus.REVOKED,
            revoked_at=revoked_at, revocation_reason=RevocationReason(reason), fingerprint_sha256="0" * 64,
            issued_by="bench", issued_at=now - timedelta(days=30), pem=PEM_SIZED))
    with ledger.write():
        certificates.insert_many(ledger, records)
    store.close()
    return folder / "store", revoked


def make_openssl_ca(folder: Path, store_path: Path, revoked: list[tuple[str, str, str]], now: datetime) -> Path:
    """A throwaway `openssl ca` folder: the same issuing CA certificate and encrypted key, and an index.txt."""
    import sqlite3

    folder.mkdir()
    conn = sqlite3.connect(store_path / "privca.db")
    pem = conn.execute("SELECT pem FROM cas WHERE role = 'issuing'").fetchone()[0]
    conn.close()
    (folder / "ca.pem").write_text(pem)
    shutil.copy(store_path / "keys" / "issuing-1.key.pem", folder / "ca.key.pem")
    os.chmod(folder / "ca.key.pem", 0o600)
    (folder / "crlnumber").write_text("01\n")
    (folder / "serial").write_text("01\n")

    def stamp(text: str) -> str:  # 2026-11-29T12:00:00Z -> 261129120000Z
        return datetime.fromisoformat(text).strftime("%y%m%d%H%M%SZ")

    expiry = (now + timedelta(days=397)).strftime("%y%m%d%H%M%SZ")
    with open(folder / "index.txt", "w") as index:
        for n, (serial, revoked_at, reason) in enumerate(revoked):
            index.write(f"R\t{expiry}\t{stamp(revoked_at)},{reason}\t{serial.upper()}\tunknown\t/CN=node{n}.example.com\n")
    (folder / "ca.cnf").write_text(OPENSSL_CONFIG.format(dir=folder))
    return folder


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def measure(entries: int, runs: int) -> tuple[float, float, float, float]:
    """Medians in seconds: privca crl (process), openssl ca -gencrl (process), issue_crls and build_crl."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    env = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE}
    with tempfile.TemporaryDirectory(prefix="privca-crl-bench-") as tmp:
        folder = Path(tmp)
        print(f"Setting up {entries:,} revoked certificates ...", file=sys.stderr)
        store_path, revoked = make_store(folder, entries, now)
        openssl_dir = make_openssl_ca(folder / "openssl", store_path, revoked, now)
        privca_cmd = [sys.executable, "-m", "privca", "crl", "--store", str(store_path), "--out", str(folder / "crl")]
        openssl_cmd = ["openssl", "ca", "-gencrl", "-config", str(openssl_dir / "ca.cnf"), "-passin",
                       "env:PRIVCA_PASSPHRASE", "-out", str(folder / "openssl.crl.pem")]
        privca_times, openssl_times = [], []
        for _ in range(runs):  # interleaved, so drift on a shared machine hits both sides alike
            openssl_times.append(timed(openssl_cmd, env))
            privca_times.append(timed(privca_cmd, env))

        mine = x509.load_der_x509_crl((folder / "crl" / "issuing-1.crl").read_bytes())
        theirs = x509.load_pem_x509_crl((folder / "openssl.crl.pem").read_bytes())
        assert len(mine) == len(theirs) == entries, (len(mine), len(theirs))
        assert {e.serial_number for e in mine} == {e.serial_number for e in theirs}

        library, build = library_times(store_path, now, runs)
    return statistics.median(privca_times), statistics.median(openssl_times), library, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the median is reported")
    args = parser.parse_args()
    privca_s, openssl_s, library, build = measure(args.entries, args.runs)
    ratio = privca_s / openssl_s
    print(f"CRL with {args.entries:,} revoked entries, RSA-3072 issuing CA, median of {args.runs} runs")
    print(f"  openssl ca -gencrl (process)          {openssl_s:6.3f} s")
    print(f"  privca crl (process, both CAs' CRLs)  {privca_s:6.3f} s")
    print(f"  ratio privca / openssl                {ratio:6.2f}x   (target <= {TARGET_RATIO}x: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    print(f"  in-process issue_crls (both CAs)      {library:6.3f} s")
    print(f"  in-process build_crl (entries + sign) {build:6.3f} s")


def library_times(store_path: Path, now: datetime, runs: int) -> tuple[float, float]:
    """In-process medians: issue_crls (ledger -> signed CRLs in the ledger) and build_crl alone."""
    from privca.authority.ca import load_issuer
    from privca.keys.material import Passphrase
    from privca.ledger.cas import active
    from privca.ledger.certificates import revoked_entries
    from privca.ledger.store import Store
    from privca.revocation.revoke import build_crl, issue_crls

    store = Store(store_path)
    secret = Passphrase(PASSPHRASE.encode())
    issuing = active(store.ledger, "issuing")
    assert issuing is not None
    issuer = load_issuer(store, issuing, secret)
    rows = revoked_entries(store.ledger, issuer.id, since=None)
    library, build = [], []
    for _ in range(runs):
        start = time.perf_counter()
        issue_crls(store, secret, now=now)
        library.append(time.perf_counter() - start)
        start = time.perf_counter()
        build_crl(issuer, rows, now=now, days=7, crl_number=1000)
        build.append(time.perf_counter() - start)
    store.close()
    return statistics.median(library), statistics.median(build)


if __name__ == "__main__":
    main()
