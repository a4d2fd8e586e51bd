"""Readers of untrusted files stay linear and bounded: PEM framing, CSR files, folder walks, profile TOML.

Each property is checked against a positive control (a well-formed input still reads) and fuzzed with
hypothesis: whatever the bytes, a reader either returns what it found or raises its own one-line PrivcaError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import build_csr
from privca.common import pem
from privca.common.fsutil import walk_files
from privca.errors import CertificateInputError, CSRError, ProfileError
from privca.inspect.sources import parse_certificates
from privca.issuance.policy import load_csr
from privca.issuance.profiles import load_profile_file

CORPUS = Path(__file__).parent / "corpus"
GOOD_CERT = (CORPUS / "cert" / "zero-serial.pem").read_bytes()


def _csr_pem(key: Any, cn: str) -> bytes:
    return build_csr(key, cn=cn, sans=[cn]).public_bytes(serialization.Encoding.PEM)


# --- PEM framing ------------------------------------------------------------------------------------------------

def test_scan_finds_blocks_in_order_and_ignores_text_between() -> None:
    data = b"subject=CN=x\n" + GOOD_CERT + b"Bag Attributes\n" + GOOD_CERT.replace(b"CERTIFICATE", b"X509 CRL")
    found = pem.scan(data)
    assert [block.label for block in found.blocks] == ["CERTIFICATE", "X509 CRL"]
    assert found.unterminated == 0


def test_scan_counts_begin_lines_without_end() -> None:
    found = pem.scan(b"-----BEGIN CERTIFICATE-----\n" * 1000 + GOOD_CERT)
    assert len(found.blocks) == 1 and found.unterminated == 1000


def test_an_end_with_another_label_does_not_close_a_block() -> None:
    found = pem.scan(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert found.blocks == [] and found.unterminated == 1


def test_repeated_begin_lines_are_refused_as_one_error() -> None:
    # 5 MiB of BEGIN lines: the old back-referencing regular expression needed about an hour for this.
    hostile = b"-----BEGIN CERTIFICATE-----\n" * (5 * 1024 * 1024 // 28)
    with pytest.raises(CertificateInputError, match="no complete PEM block"):
        parse_certificates(hostile)
    certs, _, notes = parse_certificates(hostile[: 28 * 10] + GOOD_CERT)  # the control: a real block still reads
    assert len(certs) == 1 and "10 PEM block(s) without an END line ignored" in notes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n",
                                 b"-----BEGIN PRIVATE KEY-----\r\n", b"MIIB\n", b"\x00\xff", b"-----", b"\n",
                                 GOOD_CERT]), max_size=12))
def test_fuzz_pem_scan_blocks_are_slices_of_the_input(parts: list[bytes]) -> None:
    data = b"".join(parts)
    found = pem.scan(data)
    for block in found.blocks:
        framed = b"-----BEGIN %s-----" % block.label.encode()
        assert framed in data and block.body in data
        assert b"-----BEGIN" not in block.body  # a block never swallows another BEGIN line
    try:
        parse_certificates(data)
    except CertificateInputError as exc:
        assert "\n" not in exc.one_line()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_certificate_reader_raises_only_its_own_error(data: bytes) -> None:
    for candidate in (data, b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n"):
        try:
            parse_certificates(candidate)
        except CertificateInputError:
            pass


# --- CSR files --------------------------------------------------------------------------------------------------

def test_a_pem_file_with_two_csrs_is_refused(ec_key: Any) -> None:
    two = _csr_pem(ec_key, "a.example.com") + _csr_pem(ec_key, "b.example.com")
    with pytest.raises(CSRError, match="holds 2 certificate requests"):
        load_csr(two, "two.csr")
    one = load_csr(b"comment line\n" + _csr_pem(ec_key, "a.example.com"), "one.csr")  # the control
    assert one.subject.rfc4514_string().startswith("CN=a.example.com")


def test_two_csrs_issue_nothing(cli: Any, store_path: Path, tmp_path: Path, ec_key: Any) -> None:
    from conftest import snapshot

    path = tmp_path / "in" / "two.csr"
    path.parent.mkdir()
    path.write_bytes(_csr_pem(ec_key, "a.example.com") + _csr_pem(ec_key, "b.example.com"))
    before = snapshot(store_path, tmp_path / "in")
    result = cli("issue", path, "--out", tmp_path / "out", "--store", store_path)
    assert result.exit_code == 6 and "holds 2 certificate requests" in result.stderr
    assert snapshot(store_path, tmp_path / "in") == before and not (tmp_path / "out").exists()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_csr_reader_raises_only_csr_errors(data: bytes) -> None:
    for candidate in (data, b"-----BEGIN CERTIFICATE REQUEST-----\n" + data + b"\n-----END CERTIFICATE REQUEST-----\n"):
        try:
            load_csr(candidate, "fuzz.csr")
        except CSRError:
            pass


# --- profile TOML -----------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=600))
def test_fuzz_profile_reader_raises_only_profile_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if text.isprintable() else path.write_bytes(
        text.encode("utf-8", "surrogatepass"))
    try:
        load_profile_file(path)
    except ProfileError as exc:
        assert "\n" not in exc.one_line()


# --- folder walks -----------------------------------------------------------------------------------------------

def _deep_tree(top: Path, depth: int) -> Path:
    """``depth`` nested folders made without recursion (os.makedirs itself recurses per level)."""
    top.mkdir()
    here = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=here)
            inner = os.open("d", os.O_RDONLY, dir_fd=here)
            os.close(here)
            here = inner
        fd = os.open("leaf.pem", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=here)
        os.write(fd, GOOD_CERT)
        os.close(fd)
    finally:
        os.close(here)
    return top


def test_walk_files_matches_os_walk_order(tmp_path: Path) -> None:
    for relative in ("b/2.pem", "b/1.pem", "a/z/9.pem", "a/0.pem", "top.pem"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path)  # a link to a folder is not entered
    expected = []
    for root, dirs, files in os.walk(tmp_path):
        dirs.sort()
        expected += [Path(root) / name for name in sorted(files)]
    assert walk_files(tmp_path) == expected
    assert tmp_path / "loop" not in walk_files(tmp_path)


def test_audit_walks_a_tree_1100_folders_deep(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    top = _deep_tree(tmp_path / "deep", 1100)
    try:
        done = subprocess.run([sys.executable, "-m", "privca", "audit", str(top), "--json", "--fail-on", "never"],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    finally:
        _remove_tree(top)  # shutil.rmtree, which pytest cleans up with, recurses per level too
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    located = [location for cert in report["certificates"] for location in cert["locations"]]
    assert len(located) == 1 and Path(located[0]).relative_to(top).parts == ("d",) * 1100 + ("leaf.pem",)


def _remove_tree(top: Path) -> None:
    """Remove a deep tree without recursion: list every folder first, then empty them from the deepest up."""
    folders, pending = [], [top]
    while pending:
        here = pending.pop()
        folders.append(here)
        pending += [Path(entry.path) for entry in os.scandir(here) if entry.is_dir(follow_symlinks=False)]
    for folder in reversed(folders):
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(folder)
