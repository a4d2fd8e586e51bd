"""Benchmark: hostile inputs stay cheap. Each figure is measured beside an anchor in the same run.

1. PEM: a 5 MiB file of BEGIN lines without END (just under audit's file limit) read by privca's PEM scanner,
   against SHA-256 over the same bytes (one linear pass), and against the back-referencing regular expression
   privca used before on 50, 100 and 200 KiB of the same lines (quadratic: each doubling costs four times).
2. restore: peak memory (max RSS) of `privca restore` on an archive holding an incompressible file of --size MiB,
   against the peak of `privca restore` on the same store without that file; the difference per MiB of
   archive says whether restore holds the archive in memory.

    .venv/bin/python benchmarks/hostile_bench.py [--size 256] [--skip-restore]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSPHRASE = "benchmark passphrase 2026"
LINE = b"-----BEGIN CERTIFICATE-----\n"
OLD_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


def timed(action, repeat: int = 3) -> float:
    """Median CPU seconds of this process (not wall time: the machine is shared, and waiting for a core is not
    work; both privca and its anchor are measured the same way)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return statistics.median(times)


def pem_figures() -> None:
    from privca.common import pem
    from privca.errors import CertificateInputError
    from privca.inspect.sources import parse_certificates

    hostile = LINE * (5 * 1024 * 1024 // len(LINE))

    def privca_reads() -> None:
        try:
            parse_certificates(hostile)
        except CertificateInputError:
            pass

    scan = timed(lambda: pem.scan(hostile))
    full = timed(privca_reads)
    anchor = timed(lambda: hashlib.sha256(hostile).digest())
    print(f"PEM 5 MiB of BEGIN lines: privca parse_certificates {full * 1000:.1f} ms (scan alone {scan * 1000:.1f} ms);"
          f" SHA-256 anchor {anchor * 1000:.1f} ms; ratio {full / anchor:.1f}x")
    old = {}
    for kib in (50, 100, 200):
        data = LINE * (kib * 1024 // len(LINE))
        old[kib] = timed(lambda data=data: OLD_PEM_BLOCK.findall(data), repeat=1)
        print(f"  old regular expression on {kib} KiB: {old[kib]:.2f} s")
    per_kib2 = old[200] / 200 ** 2
    print(f"  old expression extrapolated to 5 MiB (quadratic): {per_kib2 * 5120 ** 2 / 60:.0f} min")


def _max_rss_kib(args: list[str], env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess]:
    """Peak RSS of one child process: wait4's rusage for that child alone."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    done = subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status), out, err)
    return usage.ru_maxrss, done


def restore_figures(size_mib: int) -> None:
    env = {**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1"}
    privca = [sys.executable, "-m", "privca"]
    with tempfile.TemporaryDirectory(prefix="privca-bench-") as tmp:
        work = Path(tmp)
        store = work / "store"
        env["XDG_CONFIG_HOME"] = str(work / "config")  # a store of its own, not recorded for the user
        subprocess.run([*privca, "init", "--store", store, "--root-cn", "Bench Root", "--issuing-cn", "Bench Issuing",
                        "--key-type", "ec:secp256r1"], env=env, check=True, capture_output=True)
        subprocess.run([*privca, "backup", work / "small.pcabk", "--store", store], env=env, check=True,
                       capture_output=True)
        extra = store / "attachments"
        extra.mkdir(mode=0o700)
        with open(extra / "blob.bin", "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            for _ in range(size_mib):
                handle.write(os.urandom(1 << 20))
        subprocess.run([*privca, "backup", work / "big.pcabk", "--store", store], env=env, check=True,
                       capture_output=True)
        (extra / "blob.bin").unlink()
        big = (work / "big.pcabk").stat().st_size
        anchor, small_done = _max_rss_kib([*privca, "restore", str(work / "small.pcabk"), "--store",
                                           str(work / "r1")], env)
        peak, big_done = _max_rss_kib([*privca, "restore", str(work / "big.pcabk"), "--store", str(work / "r2")], env)
        print(f"restore of a {big / 2**20:.0f} MiB archive: peak RSS {peak / 1024:.0f} MiB (exit {big_done.returncode});"
              f" anchor: restore of the same store without the file {anchor / 1024:.0f} MiB (exit "
              f"{small_done.returncode}); {(peak - anchor) / 1024 / (big / 2**20):.2f} MiB of memory per MiB of archive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="MiB of incompressible data in the restore archive")
    parser.add_argument("--skip-restore", action="store_true")
    options = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, shared with other work while measured; load {os.getloadavg()[0]:.1f}")
    pem_figures()
    if not options.skip_restore:
        restore_figures(options.size)


if __name__ == "__main__":
    main()
