"""Bundles for every desk: INSTRUCTIONS.html beside each INSTRUCTIONS.md (self-contained; read by headless
Chromium and pdftotext as a Windows desk's browser would show it), --zip per product (checked with unzip), and one
subject style in every bundle."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from conftest import run_tool

PEERS = ("cucm", "unity", "cms", "cube", "expressway", "pem", "der", "p7b", "pkcs12")


@pytest.fixture
def bundles(cli: Any, store_path: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundles"
    result = cli("export", "all", "--out", out, "--store", store_path, "--zip")
    assert result.exit_code == 0, result.stderr
    return out


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_instruction_comes_as_a_self_contained_page(bundles: Path) -> None:
    pages = sorted(bundles.rglob("*.html"))
    assert len(pages) == len(PEERS) + 1  # one per peer, and the README of export all
    for page in pages:
        html = page.read_text()
        markdown = page.with_suffix(".md").read_text()
        assert html.startswith("<!DOCTYPE html>") and "<style>" in html
        for loaded in ("<script", "<link", " src=", "url(", "@import"):
            assert loaded not in html, (page, loaded)
        # Every fingerprint and heading of the Markdown is in the page, as text.
        for fingerprint in re.findall(r"`([0-9A-F]{2}(?::[0-9A-F]{2}){19,31})`", markdown):
            assert fingerprint in html
        for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
            assert _text(heading.replace("`", "")).strip() in _text(html), (page, heading)
    assert "<table>" in (bundles / "cucm" / "INSTRUCTIONS.html").read_text()  # Markdown tables became tables
    assert "| File |" not in (bundles / "cucm" / "INSTRUCTIONS.html").read_text()  # not raw Markdown


def test_a_browser_shows_the_page_as_a_document(bundles: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing; scripts/test installs it"
    pdf = tmp_path / "cucm.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", (bundles / "cucm" / "INSTRUCTIONS.html").as_uri()],
                   capture_output=True, check=True, timeout=180)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "trust the privca certificate authorities" in text
    assert "|---|" not in text and "**" not in text  # rendered, not Markdown source
    # Negative control: the Markdown file itself, opened in the same browser, shows its raw table syntax.
    raw = tmp_path / "raw.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'q'}",
                    "--no-pdf-header-footer", f"--print-to-pdf={raw}", (bundles / "cucm" / "INSTRUCTIONS.md").as_uri()],
                   capture_output=True, check=True, timeout=180)
    assert "|---|" in subprocess.run(["pdftotext", str(raw), "-"], capture_output=True, text=True, check=True).stdout


def test_zip_per_product_holds_its_folder(bundles: Path, tmp_path: Path) -> None:
    unzip = shutil.which("unzip")
    assert unzip, "unzip is missing; scripts/test installs it"
    for peer in PEERS:
        archive = bundles / f"privca-{peer}.zip"
        assert run_tool(unzip, "-tq", archive).returncode == 0
        target = tmp_path / "unpacked" / peer
        target.mkdir(parents=True)
        assert run_tool(unzip, "-q", archive, "-d", target).returncode == 0
        unpacked = {str(p.relative_to(target / f"privca-{peer}")): p.read_bytes()
                    for p in (target / f"privca-{peer}").rglob("*") if p.is_file()}
        folder = {str(p.relative_to(bundles / peer)): p.read_bytes() for p in (bundles / peer).rglob("*")
                  if p.is_file() and p.name != ".privca-bundle"}
        assert unpacked == folder and "INSTRUCTIONS.html" in unpacked


def test_zips_are_reproducible_and_optional(cli: Any, store_path: Path, bundles: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert cli("export", "all", "--out", again, "--store", store_path, "--zip").exit_code == 0
    for peer in PEERS:
        assert (again / f"privca-{peer}.zip").read_bytes() == (bundles / f"privca-{peer}.zip").read_bytes()
    plain = tmp_path / "plain"
    assert cli("export", "cms", "--out", plain, "--store", store_path).exit_code == 0
    assert not list(plain.glob("*.zip"))  # negative control: no --zip, no archive
    single = tmp_path / "single"
    assert cli("export", "cms", "--out", single, "--store", store_path, "--zip").exit_code == 0
    with zipfile.ZipFile(single / "privca-cms.zip") as archive:
        assert all(name.startswith("privca-cms/") for name in archive.namelist())


def test_one_subject_style_in_every_bundle(bundles: Path) -> None:
    roots = {}
    for pem in (bundles / "pem").glob("*.pem"):
        for block in re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem.read_text(), re.S):
            cert = x509.load_pem_x509_certificate(block.encode())
            roots[cert.subject.rfc4514_string()] = cert
    assert roots
    subjects = set()
    for page in bundles.rglob("*.md"):
        subjects |= set(re.findall(r"^- (?:Subject|Issuer): `(.+)`$", page.read_text(), re.M))
    assert subjects and subjects <= set(roots)  # every name written exactly as RFC 4514, as privca shows names
    assert not any(" = " in s or ", " in s for s in subjects)  # not OpenSSL's nor Java's style
