"""Several privca processes writing one store at once: nothing lost, nothing doubled, no error.

The ledger takes its write lock with BEGIN IMMEDIATE and waits up to its busy timeout; a database that stays busy
longer gives a one-line error and leaves everything as it was, so running the same command again is safe.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import build_csr, ledger_counts, run_tool, snapshot

PROCESSES = 4
PER_PROCESS = 250


def _write_csrs(folder: Path, key: Any, prefix: str, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for n in range(count):
        name = f"{prefix}-{n}.example.com"
        path = folder / f"{prefix}-{n}.csr"
        path.write_bytes(build_csr(key, cn=name, sans=[name]).public_bytes(serialization.Encoding.PEM))
        paths.append(path)
    return paths


def test_four_processes_issue_250_each_into_one_store(store_path: Path, ec_key: Any, tmp_path: Path) -> None:
    batches = [_write_csrs(tmp_path / f"csrs{p}", ec_key, f"p{p}", PER_PROCESS) for p in range(PROCESSES)]
    env = {**os.environ, "PRIVCA_STORE": str(store_path)}
    workers = [
        subprocess.Popen([sys.executable, "-m", "privca", "issue", *map(str, batch), "--out", str(tmp_path / f"out{p}"),
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for p, batch in enumerate(batches)
    ]
    # A reader at the same time: verify must see a consistent ledger while the writers commit.
    reader = subprocess.run([sys.executable, "-m", "privca", "verify", "--skip", "keys", "--skip", "files",
                             "--skip", "leftovers"], capture_output=True, text=True, env=env, timeout=300)
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        results.append((worker.returncode, stdout, stderr))
    assert reader.returncode == 0, reader.stdout + reader.stderr

    for code, _, stderr in results:
        assert code == 0, stderr
        assert "Error" not in stderr and "Traceback" not in stderr
    records = [record for _, stdout, _ in results for record in json.loads(stdout)["certificates"]]
    serials = {record["serial"] for record in records}
    assert len(records) == len(serials) == PROCESSES * PER_PROCESS
    assert ledger_counts(store_path) == (1000, 1001)  # 1,000 rows; 1,000 issue events after the init event
    conn = sqlite3.connect(store_path / "privca.db")
    assert {row[0] for row in conn.execute("SELECT serial FROM certificates")} == {s.lstrip("0") for s in serials}
    conn.close()

    # 1,000 valid files, checked by openssl (one call per process's output folder).
    chain = records[0]["chain_path"]
    for p in range(PROCESSES):
        leaves = sorted(str(path) for path in (tmp_path / f"out{p}").glob("*.pem") if ".chain" not in path.name
                        and ".fullchain" not in path.name)
        assert len(leaves) == PER_PROCESS
        # The processes issue at the wall clock, so openssl checks at the wall clock too.
        peer = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", chain, *leaves, timeout=300)
        assert peer.returncode == 0, peer.stderr
        assert peer.stdout.count(": OK\n") == PER_PROCESS

    final = subprocess.run([sys.executable, "-m", "privca", "verify", "--json"], capture_output=True, text=True,
                           env=env, timeout=600)
    assert final.returncode == 0, final.stdout
    assert json.loads(final.stdout)["checked"]["certificates"] == 1000


def test_busy_ledger_fails_cleanly_and_the_retry_succeeds(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import privca.ledger.db

    csrs = [make_csr(f"b{i}.csr", cn=f"b{i}.example.com", sans=[f"b{i}.example.com"]) for i in range(3)]
    out = tmp_path / "out" / "new"
    monkeypatch.setattr(privca.ledger.db, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(store_path / "privca.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the ledger
    before = snapshot(store_path, tmp_path / "out", csrs[0].parent)
    try:
        result = cli("issue", *csrs, "--out", out, "--store", store_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 8
    assert result.stderr.startswith("Error: ") and "busy" in result.stderr and result.stderr.count("\n") == 1
    assert snapshot(store_path, tmp_path / "out", csrs[0].parent) == before  # nothing written, no folder created
    assert not (tmp_path / "out").exists()

    retry = cli("issue", *csrs, "--out", out, "--store", store_path, "--json")
    assert retry.exit_code == 0, retry.stderr
    assert len(json.loads(retry.stdout)["certificates"]) == 3 and ledger_counts(store_path) == (3, 4)


SINGLE_WORKERS, SINGLE_EACH = 8, 100


def test_eight_processes_issue_100_single_certificates_each(store_path: Path, ec_key: Any, tmp_path: Path) -> None:
    """8 x 100 separate `privca issue one.csr` processes at once: every one of the 800 succeeds, none shows a
    traceback. Each process recovers abandoned journals before it writes; a journal another process is still
    creating must never look abandoned (it did: 2-4 of 800 ended in FileNotFoundError)."""
    env = {**os.environ, "PRIVCA_STORE": str(store_path)}
    batches = [_write_csrs(tmp_path / f"csrs{p}", ec_key, f"s{p}", SINGLE_EACH) for p in range(SINGLE_WORKERS)]
    # One shell loop per worker: 100 privca processes one after another, as a cron job or a script would run them.
    script = 'for csr in "$@"; do "$0" -m privca issue "$csr" --out "$OUT" --json >/dev/null 2>>"$ERRORS" || ' \
             'echo "FAILED $csr" >>"$ERRORS"; done'
    workers = [
        subprocess.Popen(["sh", "-c", script, sys.executable, *map(str, batch)], env={
            **env, "OUT": str(tmp_path / f"out{p}"), "ERRORS": str(tmp_path / f"errors{p}.txt")})
        for p, batch in enumerate(batches)
    ]
    for worker in workers:
        assert worker.wait(timeout=3600) == 0
    errors = "".join((tmp_path / f"errors{p}.txt").read_text() for p in range(SINGLE_WORKERS)
                     if (tmp_path / f"errors{p}.txt").exists())
    assert "Traceback" not in errors and "FAILED" not in errors and errors == "", errors[-3000:]
    issued = sorted(path.name for p in range(SINGLE_WORKERS) for path in (tmp_path / f"out{p}").glob("*.fullchain.pem"))
    assert len(issued) == SINGLE_WORKERS * SINGLE_EACH
    assert ledger_counts(store_path) == (800, 801)
    assert not list((store_path / "pending").iterdir())  # every journal finished, none left behind
