"""SCEP enrollment throughput and latency: `privca serve --scep` against Debian's `scepserver` (micromdm), one run.

Both servers run on this machine at the same time, each with its own CA of the same key type (RSA-3072), and are
driven by the same client: micromdm's `scepclient` from the same Debian package, one process per enrollment (as
a device enrolls), N of them at once. Each enrollment is GetCACaps, GetCACert and PKIOperation (PKCSReq) with a
challenge password; the client keys are made beforehand so that key generation is not timed. scepclient signs
with SHA-1 and encrypts with DES, so privca runs with --legacy-sha1 --legacy-des (as its interop test does).

What differs by design: privca decrypts and signs SCEP messages with its RA key (RSA-2048) and issues under the
cube profile (policy checks, a one-time challenge bound to the device's name, the ledger and its hash-chained
event, two workers); scepserver uses its CA key for everything, a shared challenge, and a file depot.

Reported per server and concurrency: enrollments per second over the whole batch (first start to last end) and
the p50/p99 latency of one scepclient process. The machine may be shared: compare the ratios of one run.

Run: .venv/bin/python benchmarks/scep_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PASSPHRASE = "benchmark passphrase 2026"
PRIVCA = [sys.executable, "-m", "privca"]
SHARED_CHALLENGE = "scepserver-benchmark-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}...: {done.stderr.strip()[-500:]}")
    return done.stdout


def wait_ready(url: str, process: subprocess.Popen[Any]) -> None:
    import urllib.request

    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited")
        try:
            with urllib.request.urlopen(url + "?operation=GetCACaps", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url}: did not start")


def make_keys(folder: Path, count: int) -> list[Path]:
    """Client keys made beforehand (RSA-2048, as scepclient would make them), so keygen is not timed."""
    paths = []
    for i in range(count):
        path = folder / f"key{i}.pem"
        key = rsa.generate_private_key(65537, 2048)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
        paths.append(path)
    return paths


def start_privca(work: Path, env: dict[str, str], devices: int) -> tuple[subprocess.Popen[Any], str, list[str]]:
    """privca with its RA, N one-time challenges (each bound to its device's name) and serve --scep."""
    store = work / "privca-store"
    run(*PRIVCA, "init", "--store", str(store), "--root-cn", "Bench Root CA", "--issuing-cn", "Bench Issuing CA",
        "--org", "Bench", "--crl-url", "http://pki.bench.test/crl", env=env)
    run(*PRIVCA, "enroll", "ra", "--store", str(store), env=env)
    from privca.enrollment.challenges import create_challenge  # the CLI's code, without 1 process per password
    from privca.ledger.store import Store

    opened = Store(store)
    now = datetime.now(timezone.utc)
    try:
        passwords = [create_challenge(opened, "cube", [f"dev{i}.bench.test"], timedelta(hours=6), now).password
                     for i in range(devices)]
    finally:
        opened.close()
    port = free_port()
    process = subprocess.Popen([*PRIVCA, "serve", "--store", str(store), "--port", str(port), "--workers", "2",
                                "--scep", "--legacy-sha1", "--legacy-des"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/scep/cube"
    wait_ready(url, process)
    return process, url, passwords


def start_scepserver(work: Path) -> tuple[subprocess.Popen[Any], str]:
    depot = work / "scep-depot"
    run("scepserver", "ca", "-init", "-depot", str(depot), "-keySize", "3072", "-organization", "Bench")
    port = free_port()
    # Its log goes to a file: a pipe nobody reads fills up and stops scepserver mid-run.
    with (work / "scepserver.log").open("wb") as log:
        process = subprocess.Popen(["scepserver", "-depot", str(depot), "-port", str(port), "-challenge",
                                    SHARED_CHALLENGE, "-allowrenew", "0"], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/scep"
    wait_ready(url, process)
    return process, url


def enroll(url: str, key: Path, out: Path, cn: str, challenge: str) -> tuple[float, str | None]:
    # Each process in its own folder with its own copy of the key: scepclient writes csr.pem into its working
    # directory and self.pem beside the key, and reuses either when it finds one.
    folder = out.with_suffix("")
    folder.mkdir()
    shutil.copy(key, folder / "key.pem")
    started = time.perf_counter()
    done = subprocess.run(["scepclient", "-server-url", url, "-private-key", str(folder / "key.pem"),
                           "-certificate", str(out),
                           "-cn", cn, "-challenge", challenge], capture_output=True, text=True, timeout=300,
                          cwd=folder)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or not out.exists():
        return elapsed, (done.stdout.strip() or done.stderr.strip().splitlines()[-1])[-200:]
    return elapsed, None


def batch(url: str, jobs: list[tuple[Path, Path, str, str]], clients: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(lambda job: enroll(url, *job), jobs))
    wall = time.perf_counter() - started
    failures = [problem for _, problem in outcomes if problem is not None]
    for problem in sorted(set(failures)):
        print(f"  {url}: {failures.count(problem)} failed: {problem}", file=sys.stderr)
    # Only enrollments that returned a certificate count: a refusal is not an enrollment.
    ordered = sorted(elapsed for elapsed, problem in outcomes if problem is None) or [wall]
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"rate": (len(jobs) - len(failures)) / wall, "p50": statistics.median(ordered) * 1000,
            "p99": p99 * 1000, "failed": len(failures)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer enrollments")
    args = parser.parse_args()
    for tool in ("scepclient", "scepserver"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install scep")
    levels = (1, 8) if args.quick else (1, 4, 16)
    per_level = 16 if args.quick else 64
    total = per_level * len(levels)
    work = Path(tempfile.mkdtemp(prefix="privca-scep-bench-"))
    env = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE, "XDG_CONFIG_HOME": str(work / "config")}
    env.pop("PRIVCA_STORE", None)
    processes: list[subprocess.Popen[Any]] = []
    try:
        keys = make_keys(work, total)  # a key enrolls once per server: scepserver refuses a key it has seen
        privca, privca_url, passwords = start_privca(work, env, total)
        processes.append(privca)
        anchor, anchor_url = start_scepserver(work)
        processes.append(anchor)
        rows = []
        used = 0
        for clients in levels:
            results = {}
            # Alternate who goes first at each level, so that neither always meets the warmer machine.
            order = [("privca", privca_url), ("scepserver", anchor_url)]
            if clients in levels[1::2]:
                order.reverse()
            for name, url in order:
                out = work / f"{name}-{clients}"
                out.mkdir()
                if name == "privca":
                    jobs = [(keys[used + i], out / f"{i}.pem", f"dev{used + i}.bench.test", passwords[used + i])
                            for i in range(per_level)]
                else:
                    jobs = [(keys[used + i], out / f"{i}.pem", f"dev{used + i}.bench.test", SHARED_CHALLENGE)
                            for i in range(per_level)]
                results[name] = batch(url, jobs, clients)
            used += per_level
            rows.append((clients, results))
        load = os.getloadavg()
        print(f"# SCEP enrollment, {per_level} scepclient processes per level; load average at the end "
              f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print("| concurrent clients | privca enrollments/s | scepserver enrollments/s | ratio | privca p50 / p99 ms "
              "| scepserver p50 / p99 ms | failed (privca / scepserver) |")
        print("|---|---|---|---|---|---|---|")
        for clients, results in rows:
            ours, theirs = results["privca"], results["scepserver"]
            print(f"| {clients} | {ours['rate']:.1f} | {theirs['rate']:.1f} | {ours['rate'] / theirs['rate']:.2f} "
                  f"| {ours['p50']:.0f} / {ours['p99']:.0f} | {theirs['p50']:.0f} / {theirs['p99']:.0f} "
                  f"| {ours['failed']:.0f} / {theirs['failed']:.0f} |")
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
