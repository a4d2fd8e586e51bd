"""The HTML audit report a manager reads: checked in headless Chromium (Debian's), as a 1280 px window, printed to
PDF (pdftotext must find every remedy) and as the screenshot in docs/images/; the expiry timeline; --title;
sources as links; self-contained."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW
from estate import BOTH, Estate, build_estate, leaf

from privca.inspect.audit import audit
from privca.inspect.publictrust import PublicRoots, load_trust_data
from privca.inspect.report import html_text

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "audit-report.png"
TITLE = "Example Ltd collaboration estate"


def _tool(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    raise AssertionError(f"{name} is missing; scripts/test installs it")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _tool("chromium", "chromium-browser")


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    return build_estate(tmp_path_factory.mktemp("report") / "estate", NOW)


@pytest.fixture(scope="module")
def report(estate: Estate) -> Any:
    return audit([str(estate.folder)], now=NOW, public_roots=PublicRoots.mozilla([estate.store_entry()]))


@pytest.fixture(scope="module")
def page(report: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "audit.html"
    path.write_text(html_text(report, TITLE))
    return path


def _browser(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--hide-scrollbars", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _with(page: Path, tmp_path: Path, extra: str) -> Path:
    """A copy of the page with ``extra`` markup before </body> (a probe or a deliberate fault)."""
    copy = tmp_path / f"variant-{len(list(tmp_path.glob('variant-*')))}.html"
    copy.write_text(page.read_text().replace("</body>", extra + "</body>"))
    return copy


def _page_width(chromium: str, page: Path, tmp_path: Path) -> int:
    probe = ("<script>document.body.setAttribute('data-width', "
             "String(document.documentElement.scrollWidth))</script>")
    dom = _browser(chromium, tmp_path, "--window-size=1280,900", "--dump-dom", _with(page, tmp_path, probe).as_uri())
    found = re.search(r'data-width="(\d+)"', dom.stdout)
    assert found, dom.stdout[:500]
    return int(found.group(1))


def test_the_report_fits_a_1280_px_window(chromium: str, page: Path, tmp_path: Path) -> None:
    assert _page_width(chromium, page, tmp_path) <= 1280
    # Negative control: a page with something 2000 px wide is measured as wider than the window.
    wide = _with(page, tmp_path, '<div style="width:2000px">wide</div>')
    assert _page_width(chromium, wide, tmp_path) > 1280


def _pdf_text(chromium: str, page: Path, tmp_path: Path) -> str:
    pdf = tmp_path / f"{page.stem}.pdf"
    _browser(chromium, tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    text = subprocess.run([_tool("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    return re.sub(r"\s+", "", text)


def test_printed_to_pdf_every_column_and_remedy_survives(chromium: str, page: Path, report: Any,
                                                         tmp_path: Path) -> None:
    remedies = {c.remedy for c in report.certificates if c.remedy}
    assert len(remedies) >= 4
    printed = _pdf_text(chromium, page, tmp_path)
    for heading in ("Severity", "Certificate", "Root", "Why", "Remedy"):
        assert heading in printed
    for remedy in remedies:
        # Words may break across lines (and hyphenate) in print: compare the start of each remedy without spaces.
        assert re.sub(r"\s+", "", remedy)[:60] in printed, remedy
    # Negative control: with the Remedy column hidden, pdftotext no longer finds the remedies.
    hidden = _with(page, tmp_path, "<style>table.certificates td:last-child, table.certificates th:last-child "
                                   "{ display: none }</style>")
    missing = _pdf_text(chromium, hidden, tmp_path)
    assert not any(re.sub(r"\s+", "", remedy)[:60] in missing for remedy in remedies)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot_for_the_docs(chromium: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "audit-report.png"
    _browser(chromium, tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri())
    assert _png_size(shot) == (1280, 1600)
    if os.environ.get("PRIVCA_UPDATE_SCREENSHOT") == "1":  # refresh the committed picture on purpose only
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
    assert _png_size(SCREENSHOT) == (1280, 1600), "docs/images/audit-report.png: make it with PRIVCA_UPDATE_SCREENSHOT=1"


def test_timeline_shows_today_the_cut_offs_and_every_expiry(report: Any, page: Path) -> None:
    from privca.inspect.timeline import window

    html = page.read_text()
    svg = html[html.index("<svg"):html.index("</svg>")]
    start, end = window(NOW)
    assert f"today {start}" in svg
    trust = load_trust_data()
    if start <= trust.chrome_leaf_serverauth_only_from <= end:
        assert "Chrome: serverAuth only from 2027-03-15" in svg
    for ca in trust.cas:
        shown = f"{ca.name}: last clientAuth {ca.client_auth_ends}".replace("'", "&#x27;")
        assert (shown in svg) == (start <= ca.client_auth_ends <= end), ca.name
    expiring = [c for c in report.certificates if start <= c.info.not_after.date() <= end]
    assert svg.count("<circle") == len(expiring) > 3
    expired = [c for c in report.certificates if c.info.not_after.date() < start]
    assert f"{len(expired)} expired" in svg
    assert svg.count('fill="#c62828"><title>') == sum(1 for c in expiring if c.severity == "critical")


def test_title_links_and_nothing_loaded_from_elsewhere(report: Any, page: Path) -> None:
    html = page.read_text()
    assert f"<h1>{TITLE}</h1>" in html and f"<title>{TITLE} · " in html
    assert "<h1>Certificate audit</h1>" in html_text(report)  # the default title
    assert "<h1>&lt;b&gt;x&lt;/b&gt;</h1>" in html_text(report, "<b>x</b>")  # a title is text, not markup
    links = re.findall(r'<a href="([^"]+)">', html)
    assert links and all(link.startswith(("https://", "http://")) for link in links)
    assert 'href="https://www.cisco.com/c/en/us/support/docs/field-notices/743/fn74362.html"' in html
    for loaded in ("<script", "<link", " src=", "url(", "@import", "<iframe", "<img"):
        assert loaded not in html, loaded


def test_an_expired_public_certificate_does_not_keep_working(estate: Estate) -> None:
    from datetime import timedelta

    from privca.inspect.audit import audit as run

    folder = estate.folder.parent / "expired-public"
    folder.mkdir(exist_ok=True)
    old = leaf("old.example.com", estate.digicert_ca, NOW - timedelta(days=10), eku=BOTH, days_left=-5)
    (folder / "old.pem").write_bytes(old.pem() + estate.digicert_ca.pem())
    result = run([str(folder)], now=NOW, public_roots=PublicRoots.mozilla([estate.store_entry()]))
    messages = " ".join(f.message for c in result.certificates for f in c.findings)
    assert "expired on" in messages and "keeps working until" not in messages
