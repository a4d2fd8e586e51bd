"""``-`` reads standard input: a CSR for issue, a certificate file for audit (as a real process, with a pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import run_tool


def _privca(*args: str | Path, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "privca", *map(str, args)], input=stdin, capture_output=True,
                          env={**os.environ}, timeout=120)


def test_issue_reads_a_csr_from_stdin(store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("piped.csr", cn="piped.example.com", sans=["piped.example.com"])
    out = tmp_path / "certs"
    done = _privca("issue", "-", "--out", out, "--store", store_path, "--json", stdin=csr.read_bytes())
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)["certificates"][0]
    assert Path(record["cert_path"]) == out / "piped.example.com.pem"  # named after the CSR's CN
    verified = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", out / "piped.example.com.chain.pem",
                        out / "piped.example.com.pem")
    assert verified.returncode == 0, verified.stderr


def test_stdin_without_out_or_with_garbage_changes_nothing(store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("piped.csr", cn="piped.example.com", sans=["piped.example.com"])
    no_out = _privca("issue", "-", "--store", store_path, stdin=csr.read_bytes())
    assert no_out.returncode == 2 and b"--out" in no_out.stderr and b"Traceback" not in no_out.stderr
    garbage = _privca("issue", "-", "--out", tmp_path / "g", "--store", store_path, stdin=b"not a csr\n")
    assert garbage.returncode == 6 and garbage.stderr.decode().startswith("Error: - (stdin): ")
    assert not (tmp_path / "g").exists()
    listed = _privca("list", "--store", store_path, stdin=b"")
    assert listed.stdout.decode().splitlines()[1:] == []  # nothing was issued


def test_audit_reads_a_chain_from_stdin(store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("a.csr", cn="a.example.com", sans=["a.example.com"])
    assert _privca("issue", csr, "--out", tmp_path / "o", "--store", store_path, stdin=b"").returncode == 0
    chain = (tmp_path / "o" / "a.fullchain.pem").read_bytes()
    done = _privca("audit", "-", "--json", "--fail-on", "never", stdin=chain)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    text = json.dumps(report)
    assert "a.example.com" in text and "- (stdin)" in text
    bad = _privca("audit", "-", "--json", "--fail-on", "never", stdin=b"garbage")
    assert bad.returncode == 0 and "a.example.com" not in bad.stdout.decode()
    assert "unreadable" in bad.stderr.decode() and "1 unreadable" in bad.stderr.decode()
