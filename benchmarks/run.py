#!/usr/bin/env python3
"""privca benchmarks: each one measures privca and an anchor in the same run, and prints the ratio and target.

    python benchmarks/run.py                 # all of them (a few minutes; builds test data once)
    python benchmarks/run.py single help     # some of them
    python benchmarks/run.py --quick         # fewer repetitions
    python benchmarks/run.py --markdown      # also print a table for docs/performance.md

Benchmarks (name: privca vs anchor, target):
  batch   `privca issue` of 1,000 CSRs in one call vs the in-process signing ceiling (parse + verify CSR,
          build, sign, PEM with the same CA key), as certificates per second: >= 0.8x. privca signs on one
          thread per core, the ceiling on one: batch/1cpu runs the same batch pinned to one CPU to show privca's
          own overhead
  openssl the same batch, per certificate, vs an `openssl ca` loop (one process per certificate, on a sample)
  single  `privca issue one.csr` wall time vs `python -c "import cryptography.x509, typer, sqlite_utils"`: <= 1.2x
  help    `privca --help` vs that import line: <= 0.5x
  list    `privca list --expiring-within 30` on a 1,000,000-certificate ledger, minus the import line: < 0.5 s
  crl     CRL of 100,000 entries vs `openssl ca -gencrl`: <= 1.5x
  audit   `privca audit` of 10,000 certificates vs a shell loop of `openssl x509 -noout -ext extendedKeyUsage`:
          >= 20x
  head    the check of the signed head every command makes when it opens a store (in-process: the newest seal
          known from the user's cache, and checked anew), vs opening the ledger, which every command does: < 2 ms
  live    `privca audit` of 200 loopback TLS endpoints, 20 of which never answer, --timeout 5, vs the same audit
          with --concurrency 1 and an `openssl s_client` loop: < 12 s

Test data (CSRs, a CA store, the million-row ledger) is built under benchmarks/.data on first use. Timings are
medians of wall-clock runs on this machine: compare the ratios, which cancel out most of the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
PY = sys.executable
PASSPHRASE = "benchmark passphrase 2026"
# XDG_CONFIG_HOME of its own: privca init must not record a benchmark store as the user's CA.
ENV = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1", "XDG_CONFIG_HOME": str(DATA / "config")}
IMPORT_LINE = [PY, "-c", "import cryptography.x509, typer, sqlite_utils"]
# The privca an administrator runs: the console script next to this Python, else python -m privca.
_SCRIPT = Path(PY).parent / "privca"
PRIVCA = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "privca"]
BATCH = 1000


@dataclass
class Result:
    name: str
    privca: str
    anchor: str
    ratio: float
    target: str
    met: bool
    note: str = ""


def settle(out: Path) -> None:
    """Remove a previous run's output and let the disk finish with it (ext4 mounted with `discard` trims the
    freed blocks at the next journal commit, which stalls whoever creates files next) before timing again."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    time.sleep(0.5)
    os.sync()


def wall(command: list[str], runs: int, *, before: Callable[[], None] | None = None, cwd: Path | None = None,
         one_core: bool = False) -> float:
    """Median wall time of ``command`` over ``runs`` runs (after one warm-up), in seconds; ``one_core`` runs it
    pinned to one CPU (so privca signs on one thread, as the in-process ceiling does)."""
    times = []
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_core else None
    for i in range(runs + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        done = subprocess.run(command, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=pin)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(command[:4])}...: {done.stderr.decode()[-500:]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


# --- test data ------------------------------------------------------------------------------------------------

def make_csrs(count: int) -> list[Path]:
    """RSA-2048 CSRs like Expressway's (CN + 3 SANs, asking for serverAuth + clientAuth), from 8 keys."""
    folder = DATA / "csrs"
    existing = sorted(folder.glob("*.csr"))
    if len(existing) >= count:
        return existing[:count]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    keys = [rsa.generate_private_key(65537, 2048) for _ in range(8)]
    for n in range(count):
        host = f"expc{n:05d}.collab.example.com"
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Ltd"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, host)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName(f"alt{n:05d}.example.com"),
                                                           x509.DNSName(f"chat{n:05d}.example.com")]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False)
               .sign(keys[n % len(keys)], hashes.SHA256()))
        (folder / f"{n:05d}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return sorted(folder.glob("*.csr"))[:count]


def ca_store() -> Path:
    """A store with privca's default CA keys (RSA-4096 root, RSA-3072 issuing), made once."""
    path = DATA / "store"
    if not (path / "privca.db").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([PY, "-m", "privca", "init", "--root-cn", "Bench Root CA", "--issuing-cn", "Bench Issuing CA",
                        "--crl-url", "http://pki.example.test/crl", "--store", str(path)], env=ENV, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def fresh_store(into: Path) -> Path:
    target = into / "store"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ca_store(), target)
    return target


def million_row_store() -> Path:
    """The CA store plus 1,000,000 certificate rows written straight into SQLite (realistic PEM sizes)."""
    path = DATA / "store-1m"
    marker = path / ".complete"
    if marker.exists():
        return path
    import random
    import sqlite3

    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(ca_store(), path)
    work = Path(tempfile.mkdtemp())
    csr = make_csrs(1)[0]
    subprocess.run([PY, "-m", "privca", "issue", str(csr), "--out", str(work), "--store", str(path)], env=ENV,
                   check=True, stdout=subprocess.DEVNULL)
    conn = sqlite3.connect(path / "privca.db", isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    template = dict(zip([d[0] for d in conn.execute("SELECT * FROM certificates").description],
                        conn.execute("SELECT * FROM certificates").fetchone()))
    conn.execute("DELETE FROM certificates")
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    columns = [c for c in template if c != "id"]

    def rows(start: int, stop: int):  # type: ignore[no-untyped-def]
        for n in range(start, stop):
            row = dict(template)
            row["serial"] = format(rng.getrandbits(159) | (1 << 158), "x")
            row["subject"] = f"CN=expc{n:07d}.collab.example.com,O=Example Ltd"
            row["sans"] = json.dumps([f"expc{n:07d}.collab.example.com"])
            # Issued over the last two years with 397-day validity: about 4% expire in any 30 days.
            issued = now - timedelta(days=rng.uniform(0, 730))
            row["not_before"] = issued.strftime("%Y-%m-%dT%H:%M:%SZ")
            row["not_after"] = (issued + timedelta(days=397)).strftime("%Y-%m-%dT%H:%M:%SZ")
            row["status"] = "revoked" if rng.random() < 0.02 else "valid"
            row["cert_path"] = f"/srv/certs/expc{n:07d}.pem"
            yield tuple(row[c] for c in columns)

    sql = f"INSERT INTO certificates ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    for start in range(0, 1_000_000, 100_000):
        conn.execute("BEGIN")
        conn.executemany(sql, rows(start, start + 100_000))
        conn.execute("COMMIT")
        print(f"  ledger rows: {start + 100_000:,}", file=sys.stderr)
    conn.close()
    shutil.rmtree(work)
    from privca.ledger.db import Ledger

    Ledger(path / "privca.db").close()  # apply any schema migration (indexes) now, not in the first timed run
    marker.write_text("1000000\n")
    return path


# --- anchors --------------------------------------------------------------------------------------------------

def signing_ceiling(store: Path, csrs: list[Path], reps: int) -> float:
    """Certificates per second, in this process, with the same CA key as privca: parse + verify the CSR, build
    the leaf (privca's extensions), sign, PEM. No policy, ledger or files: the ceiling."""
    import sqlite3

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    conn = sqlite3.connect(store / "privca.db")
    key_ref, pem = conn.execute("SELECT key_ref, pem FROM cas WHERE role = 'issuing'").fetchone()
    conn.close()
    ca_key = serialization.load_pem_private_key((store / key_ref).read_bytes(), PASSPHRASE.encode(),
                                                unsafe_skip_rsa_key_validation=True)
    ca_cert = x509.load_pem_x509_certificate(pem.encode())
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
    cdp = x509.CRLDistributionPoints([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://pki.example.test/crl/issuing-1.crl")], None, None, None)])
    ku = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    basic = x509.BasicConstraints(ca=False, path_length=None)
    blobs = [path.read_bytes() for path in csrs]
    now = datetime.now(timezone.utc)

    def one(blob: bytes) -> bytes:
        csr = x509.load_pem_x509_csr(blob)
        if not csr.is_signature_valid:
            raise ValueError("bad CSR")
        public = csr.public_key()
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + timedelta(days=397)).add_extension(basic, True).add_extension(ku, True)
                .add_extension(eku, False).add_extension(san, False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False).add_extension(aki, False)
                .add_extension(cdp, False).sign(ca_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for blob in blobs:
            one(blob)
        rates.append(len(blobs) / (time.perf_counter() - start))
    return statistics.median(rates)


def openssl_ca_per_cert(store: Path, csrs: list[Path], work: Path) -> float:
    """Seconds per certificate for `openssl ca`, one process per certificate, with the same CA key."""
    import sqlite3

    folder = work / "openssl-ca"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "newcerts").mkdir(parents=True)
    (folder / "out").mkdir()
    conn = sqlite3.connect(store / "privca.db")
    key_ref, pem = conn.execute("SELECT key_ref, pem FROM cas WHERE role = 'issuing'").fetchone()
    conn.close()
    (folder / "ca.pem").write_text(pem)
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("1000\n")
    (folder / "ca.cnf").write_text(f"""[ ca ]
default_ca = bench
[ bench ]
dir = {folder}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.pem
private_key = {store / key_ref}
default_md = sha256
default_days = 397
policy = any
unique_subject = no
copy_extensions = copy
x509_extensions = leaf
[ any ]
commonName = supplied
organizationName = optional
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://pki.example.test/crl/issuing-1.crl
""")
    start = time.perf_counter()
    for n, csr in enumerate(csrs):
        subprocess.run(["openssl", "ca", "-batch", "-config", str(folder / "ca.cnf"), "-notext", "-passin",
                        f"pass:{PASSPHRASE}", "-in", str(csr), "-out", str(folder / "out" / f"{n}.pem")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) / len(csrs)


# --- the benchmarks -------------------------------------------------------------------------------------------

def bench_batch(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    csrs = make_csrs(BATCH)
    store = ca_store()
    reps = 2 if args.quick else 3
    ceiling = signing_ceiling(store, csrs, reps)
    out = work / "batch-out"

    def reset() -> None:
        fresh_store(work)
        settle(out)

    seconds = wall([*PRIVCA, "issue", *map(str, csrs), "--out", str(out), "--store", str(work / "store")],
                   reps, before=reset)
    # The same with a tenth of the CSRs: the difference is the cost of 900 certificates without the fixed
    # start-up (imports, unlocking the CA key), i.e. privca's own per-certificate throughput.
    small = wall([*PRIVCA, "issue", *map(str, csrs[:BATCH // 10]), "--out", str(out), "--store", str(work / "store")],
                 reps, before=reset)
    rate = BATCH / seconds
    marginal = (BATCH - BATCH // 10) / (seconds - small)
    files = file_creation_seconds(work / "files", 3 * BATCH)
    shared["batch_seconds_per_cert"] = seconds / BATCH
    ratio = rate / ceiling
    results = [Result("batch", f"{rate:,.0f} certs/s ({seconds:.2f} s for {BATCH:,}, whole process)",
                      f"{ceiling:,.0f} certs/s in-process ceiling", ratio, ">= 0.8x", ratio >= 0.8,
                      f"privca signs on one thread per core ({len(os.sched_getaffinity(0))} here); the ceiling on one")]
    if len(os.sched_getaffinity(0)) > 1:
        # The same batch pinned to one core: privca's own overhead against the one-thread ceiling.
        pinned = wall([*PRIVCA, "issue", *map(str, csrs), "--out", str(out), "--store", str(work / "store")],
                      reps, before=reset, one_core=True)
        results.append(Result("batch/1cpu", f"{BATCH / pinned:,.0f} certs/s ({pinned:.2f} s, pinned to one CPU)",
                              f"{ceiling:,.0f} certs/s in-process ceiling", BATCH / pinned / ceiling, "(no target)",
                              True, "privca's overhead alone: one signing thread, like the ceiling"))
    return [*results[:1],
            Result("batch/marginal", f"{marginal:,.0f} certs/s (1,000 minus 100 CSRs)",
                   f"{ceiling:,.0f} certs/s in-process ceiling", marginal / ceiling, "(no target)", True,
                   "per-certificate work only: policy, signing, ledger and three files per certificate; "
                   f"creating {3 * BATCH:,} small files on this disk alone took {files:.2f} s in this run"),
            *results[1:]]


def file_creation_seconds(folder: Path, count: int) -> float:
    """How long this disk takes, right now, to create ``count`` small files the way privca does (exclusive
    create, write, close, rename): the part of a batch that depends on the machine's storage, not on privca."""
    folder.mkdir(parents=True, exist_ok=True)
    data = b"-" * 1500
    start = time.perf_counter()
    for n in range(count):
        temp = folder / f".{n}.pem.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        os.replace(temp, folder / f"{n}.pem")
    elapsed = time.perf_counter() - start
    settle(folder)
    return elapsed


def bench_openssl(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    if shutil.which("openssl") is None:
        return [Result("openssl", "-", "-", 0, "-", True, "openssl not installed; skipped")]
    sample = make_csrs(30 if args.quick else 100)
    per_cert = openssl_ca_per_cert(ca_store(), sample, work)
    if "batch_seconds_per_cert" not in shared:
        bench_batch(args, work, shared)
    ours = shared["batch_seconds_per_cert"]
    return [Result("openssl", f"{ours * 1000:.2f} ms/cert (batch of {BATCH:,})",
                   f"{per_cert * 1000:.1f} ms/cert (openssl ca, {len(sample)} processes)", ours / per_cert,
                   "(no target)", True, f"privca is {per_cert / ours:.0f}x faster per certificate")]


def import_line(runs: int, shared: dict[str, float]) -> float:
    if "import_line" not in shared:
        shared["import_line"] = wall(IMPORT_LINE, runs)
    return shared["import_line"]


def bench_single(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    runs = 5 if args.quick else 15
    csr = make_csrs(1)[0]
    store = fresh_store(work)
    out = work / "single-out"

    def reset() -> None:
        settle(out)

    seconds = wall([*PRIVCA, "issue", str(csr), "--out", str(out), "--store", str(store)], runs, before=reset)
    floor = import_line(runs, shared)
    ratio = seconds / floor
    return [Result("single", f"{seconds * 1000:.0f} ms", f"{floor * 1000:.0f} ms import line", ratio, "<= 1.2x",
                   ratio <= 1.2)]


def bench_help(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    runs = 5 if args.quick else 15
    seconds = wall([*PRIVCA, "--help"], runs)
    floor = import_line(runs, shared)
    ratio = seconds / floor
    return [Result("help", f"{seconds * 1000:.0f} ms", f"{floor * 1000:.0f} ms import line", ratio, "<= 0.5x",
                   ratio <= 0.5)]


def bench_list(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    runs = 3 if args.quick else 7
    store = million_row_store()
    seconds = wall([*PRIVCA, "list", "--expiring-within", "30", "--store", str(store)], runs)
    floor = import_line(runs, shared)
    beyond = seconds - floor
    return [Result("list", f"{seconds * 1000:.0f} ms", f"{floor * 1000:.0f} ms import line", seconds / floor,
                   "< 0.5 s beyond the floor", beyond < 0.5, f"{beyond * 1000:.0f} ms beyond the process floor")]


def bench_crl(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    sys.path.insert(0, str(HERE))
    import crl_bench

    privca_s, openssl_s, _, build = crl_bench.measure(20_000 if args.quick else 100_000, 1 if args.quick else 3)
    ratio = privca_s / openssl_s
    entries = "20,000" if args.quick else "100,000"
    return [Result("crl", f"{privca_s:.2f} s (privca crl, {entries} entries)", f"{openssl_s:.2f} s openssl ca -gencrl",
                   ratio, "<= 1.5x", ratio <= 1.5, f"build_crl alone {build:.2f} s; privca signs both CAs' CRLs")]


def bench_audit(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    sys.path.insert(0, str(HERE))
    import audit_bench

    privca_rate, loop_rate, audited, sampled = audit_bench.measure(2_000 if args.quick else 10_000, 200 if args.quick
                                                                   else 500)
    ratio = privca_rate / loop_rate
    return [Result("audit", f"{privca_rate:,.0f} certs/s ({audited:,} certificates)",
                   f"{loop_rate:,.0f} certs/s openssl x509 loop", ratio, ">= 20x", ratio >= 20,
                   f"the loop timed on {sampled} files and extrapolated")]


def bench_live(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    sys.path.insert(0, str(HERE))
    import audit_live_bench

    result = audit_live_bench.measure(200, 20, 5.0)
    privca_s, sequential_s, loop_s = (float(result[k]) for k in ("privca", "sequential", "s_client"))  # type: ignore[arg-type]
    return [Result("live", f"{privca_s:.2f} s (audit of 200 endpoints, 20 silent)",
                   f"{sequential_s:.2f} s sequential, {loop_s:.2f} s s_client loop", privca_s / sequential_s,
                   "< 12 s", privca_s < audit_live_bench.GOAL_SECONDS, "--timeout 5; ratio against the sequential run")]


def bench_head(args: argparse.Namespace, work: Path, shared: dict[str, float]) -> list[Result]:
    """The read-time check of the ledger's signed head (privca/ledger/proof.py), in this process."""
    sys.path.insert(0, str(HERE.parent))
    from privca.ledger.db import Ledger
    from privca.ledger.proof import head_problem

    store = fresh_store(work)
    runs = 200 if args.quick else 2000

    def median_ms(action: Callable[[], object]) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    opened = Ledger(store / "privca.db")
    problem, token = head_problem(opened)  # imports cryptography once, as the first command after a seal does
    if problem is not None:
        raise SystemExit(f"benchmark store: {problem}")
    checked = median_ms(lambda: head_problem(opened))
    cached = median_ms(lambda: head_problem(opened, token))
    opened.close()
    open_ms = median_ms(lambda: Ledger(store / "privca.db").close())
    return [Result("head", f"{cached:.3f} ms (seal known)", f"{open_ms:.3f} ms opening the ledger", cached / open_ms,
                   "< 2 ms", cached < 2.0, f"a seal not yet known: {checked:.3f} ms with cryptography imported "
                   "(a command that reads the store after another user's write pays that import once)")]


BENCHMARKS: dict[str, Callable[[argparse.Namespace, Path, dict[str, float]], list[Result]]] = {
    "batch": bench_batch,
    "openssl": bench_openssl,
    "single": bench_single,
    "help": bench_help,
    "list": bench_list,
    "crl": bench_crl,
    "audit": bench_audit,
    "live": bench_live,
    "head": bench_head,
}


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import cryptography

    return (f"{platform.node()}: {os.cpu_count()} CPUs {cpu}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
            f"SQLite {__import__('sqlite3').sqlite_version}")


def compile_privca() -> None:
    """Byte-compile privca's modules, as pip does when it installs the wheel. Without it, an editable checkout
    run with PYTHONDONTWRITEBYTECODE set (some CI and container images set it) compiles every module from source
    on every run, about 60 ms that an installed privca never pays."""
    import compileall

    import privca

    compileall.compile_dir(Path(privca.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], default=[], metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} [default: all]")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args()
    names = args.names or list(BENCHMARKS)
    compile_privca()
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}", flush=True)
    results: list[Result] = []
    shared: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="privca-bench-") as tmp:
        for name in names:
            for result in BENCHMARKS[name](args, Path(tmp), shared):
                results.append(result)
                verdict = "ok " if result.met else "MISS"
                print(f"{verdict} {result.name:8} {result.privca:45} vs {result.anchor:45} ratio {result.ratio:6.2f} "
                      f"target {result.target}  {result.note}", flush=True)
    if args.markdown:
        print("\n| benchmark | privca | anchor (same run) | ratio | target | met |\n|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r.name} | {r.privca} | {r.anchor} | {r.ratio:.2f} | {r.target} | {'yes' if r.met else 'no'} |"
                  + (f" {r.note}" if r.note else ""))
    if not all(r.met for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
