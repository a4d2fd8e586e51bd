"""Bad input: each case is one clear `Error:` line, a non-zero exit, and no change to ledger, store or output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import build_csr, privca_subprocess, snapshot

DATA = Path(__file__).parent / "data"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _bad_signature(tmp: Path, key) -> Path:
    der = bytearray(build_csr(key).public_bytes(Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature
    return _write(tmp / "badsig.csr", bytes(der))


CASES = {
    "empty file": (lambda tmp, key, mk: _write(tmp / "empty.csr", b""), [], "the file is empty"),
    "random bytes": (lambda tmp, key, mk: _write(tmp / "random.csr", os.urandom(700)), [], "not a valid PEM or DER"),
    "truncated CSR": (
        lambda tmp, key, mk: _write(tmp / "trunc.csr", build_csr(key).public_bytes(Encoding.PEM)[:400]),
        [], "not a valid PEM or DER"),
    "bad signature": (lambda tmp, key, mk: _bad_signature(tmp, key), [], "signature does not verify"),
    "RSA-1024": (lambda tmp, key, mk: DATA / "rsa1024.csr", [], "RSA-1024 key is too weak"),
    "RSA-8192": (lambda tmp, key, mk: DATA / "rsa8192.csr", [], "over 4096 bits"),
    "exponent 3": (lambda tmp, key, mk: DATA / "rsa-e3.csr", [], "public exponent 3"),
    "wildcard SAN": (lambda tmp, key, mk: mk(sans=["expc1.example.com", "*.example.com"]), [], "wildcard"),
    "asks for CA": (lambda tmp, key, mk: mk(ca=True), [], "CA:TRUE"),
    "SAN over 999": (
        lambda tmp, key, mk: mk(sans=["expc1.example.com"] + [f"alias{i:03d}.collab.example.com" for i in range(40)]),
        [], "Expressway ignores SAN text past 999"),
    "CN not in SAN": (lambda tmp, key, mk: mk(cn="other.example.com"), [], "is not among the SANs"),
    "no SAN": (lambda tmp, key, mk: mk(sans=[]), [], "no subjectAltName"),
    "IP SAN for Expressway": (lambda tmp, key, mk: mk(ip_sans=["192.0.2.10"]), [], "ip names are not allowed"),
    "control characters": (lambda tmp, key, mk: mk(cn="expc1.example.com\x07", sans=["expc1.example.com"]), [],
                           "control characters"),
    "missing file": (lambda tmp, key, mk: tmp / "nope.csr", [], "nope.csr: no such file"),
    "a folder": (lambda tmp, key, mk: (tmp / "folder.csr").mkdir(parents=True) or tmp / "folder.csr", [],
                 "not a regular file"),
    "unknown profile": (lambda tmp, key, mk: mk(), ["--profile", "no-such"], "profile 'no-such': unknown"),
    "days zero": (lambda tmp, key, mk: mk(), ["--days", "0"], "allows 1 to"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_csr_input_changes_nothing(case: str, cli, store_path: Path, make_csr, rsa2048_key, tmp_path: Path) -> None:
    make, options, expected = CASES[case]
    csr = make(tmp_path / "in", rsa2048_key, make_csr)
    out = tmp_path / "out"
    before = snapshot(store_path, tmp_path / "in", tmp_path / "csrs")
    result = cli("issue", csr, *options, "--out", out, "--store", store_path)
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()
    assert snapshot(store_path, tmp_path / "in", tmp_path / "csrs") == before


def test_wrong_passphrase_changes_nothing(cli, store_path: Path, make_csr, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRIVCA_PASSPHRASE", "not the passphrase at all")
    csr = make_csr()
    before = snapshot(store_path, csr.parent)
    result = cli("issue", csr, "--store", store_path)
    assert result.exit_code != 0 and "wrong passphrase" in result.stderr
    assert "not the passphrase" not in result.stderr
    assert snapshot(store_path, csr.parent) == before


def test_existing_output_needs_force(cli, store_path: Path, make_csr) -> None:
    csr = make_csr("expc.csr")
    assert cli("issue", csr, "--store", store_path).exit_code == 0
    before = snapshot(store_path, csr.parent)
    again = cli("issue", csr, "--store", store_path)
    assert again.exit_code != 0 and "already exists; use --force" in again.stderr
    assert snapshot(store_path, csr.parent) == before
    forced = cli("issue", csr, "--store", store_path, "--force")
    assert forced.exit_code == 0


def test_symlinked_output_is_refused(cli, store_path: Path, make_csr, tmp_path: Path) -> None:
    csr = make_csr("expc.csr")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (csr.parent / "expc.pem").symlink_to(victim)
    result = cli("issue", csr, "--store", store_path, "--force")
    assert result.exit_code != 0 and "symbolic link" in result.stderr
    assert victim.read_text() == "keep me"


def test_no_store_is_a_clear_error(cli, make_csr, tmp_path: Path) -> None:
    result = cli("issue", make_csr(), "--store", tmp_path / "nowhere")
    assert result.exit_code != 0 and "privca init" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_init_refuses_to_overwrite_a_ca(cli, store_path: Path) -> None:
    before = snapshot(store_path)
    result = cli("init", "--root-cn", "Other Root", "--issuing-cn", "Other Issuing", "--store", store_path)
    assert result.exit_code != 0 and "already holds a CA" in result.stderr
    assert snapshot(store_path) == before
    assert cli("init", "--root-cn", "Other Root", "--issuing-cn", "Other Issuing", "--store", store_path,
               "--exist-ok").exit_code == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--key-type", "rsa:1024"], "key type 'rsa:1024': not supported"),
        (["--root-cn", "Same", "--issuing-cn", "same"], "must differ"),
        (["--crl-url", "ftp://x/crl"], "must be an http:// or https:// URL"),
        (["--issuing-days", "9000", "--root-days", "100"], "issuing days < root days"),
    ],
)
def test_init_bad_options_create_nothing(cli, tmp_path: Path, options: list[str], expected: str) -> None:
    base = ["--root-cn", "R Root", "--issuing-cn", "R Issuing"]
    result = cli("init", *base, *options, "--store", tmp_path / "s")
    assert result.exit_code != 0 and expected in result.stderr
    assert not (tmp_path / "s").exists()


def test_short_passphrase_is_refused_at_init(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PRIVCA_PASSPHRASE", "short")
    result = cli("init", "--root-cn", "R", "--issuing-cn", "I", "--store", tmp_path / "s")
    assert result.exit_code != 0 and "too short" in result.stderr
    assert not (tmp_path / "s").exists()


def test_no_traceback_from_a_real_process(store_path: Path, tmp_path: Path) -> None:
    garbage = _write(tmp_path / "garbage.csr", b"\x00\xff" * 300)
    result = privca_subprocess("issue", garbage, "--store", store_path)
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
