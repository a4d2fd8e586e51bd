"""The audit report's expiry timeline: the next 24 months as one inline SVG picture, with no script and no file.

Today, Chrome's serverAuth-only date and each public CA's last clientAuth issuance are vertical lines; every
certificate that expires in the window is a dot at its expiry day, coloured by severity (those already expired are
counted at the left edge). A manager sees at a glance what falls before which line.

Every text in the picture comes from certificates or the trust data file and is escaped here, so the SVG can be
placed in the page as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any

MONTHS = 24
WIDTH, LEFT, RIGHT = 1160, 56, 24
LABEL_ROW, DOT, DOT_GAP = 15, 4, 10
COLOURS = {"critical": "#c62828", "warning": "#b26a00", "info": "#2e7d32", "today": "#1565c0",
           "chrome": "#6a1b9a", "cutoff": "#ef6c00", "grid": "#d6dbe0", "text": "#1d232a", "muted": "#5b6670"}


@dataclass(frozen=True)
class Line:
    day: date
    label: str
    kind: str  # "today", "chrome" or "cutoff"


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


def lines_for(now: datetime, trust: Any) -> list[Line]:
    """Today, Chrome's date and the CA cut-offs that fall inside the window, in date order."""
    start, end = now.date(), add_months(now.date(), MONTHS)
    found = [Line(start, f"today {start}", "today")]
    chrome = trust.chrome_leaf_serverauth_only_from
    if start <= chrome <= end:
        found.append(Line(chrome, f"Chrome: serverAuth only from {chrome}", "chrome"))
    for ca in trust.cas:
        if start <= ca.client_auth_ends <= end:
            found.append(Line(ca.client_auth_ends, f"{ca.name}: last clientAuth {ca.client_auth_ends}", "cutoff"))
    return sorted(found, key=lambda line: (line.day, line.kind != "today"))


def timeline_svg(certificates: list[dict[str, Any]], now: datetime, trust: Any) -> str:
    """The SVG for ``certificates`` (the records of ``audit --json``): expiry dots against the dated lines."""
    start = now.date()
    end = add_months(start, MONTHS)
    span = (end - start).days
    plot = WIDTH - LEFT - RIGHT

    def x(day: date) -> float:
        return LEFT + plot * (day - start).days / span

    lines = lines_for(now, trust)
    # Labels above the plot, each in the first row where it does not overlap the one before (about 6 px a letter).
    rows_end: list[float] = []
    placed: list[tuple[Line, int]] = []
    for line in lines:
        left = x(line.day)
        width = 6.2 * len(line.label) + 10
        if left + width > WIDTH:  # a label near the right edge runs leftwards from its line
            left -= width
        row = next((i for i, taken in enumerate(rows_end) if taken < left), len(rows_end))
        if row == len(rows_end):
            rows_end.append(0)
        rows_end[row] = left + width
        placed.append((line, row))
    top = 18 + LABEL_ROW * max(1, len(rows_end))
    # Dots: stacked upwards where expiries fall within a few pixels of each other.
    dots: list[tuple[float, int, dict[str, Any]]] = []
    expired = [c for c in certificates if _day(c["not_after"]) < start]
    heights: dict[int, int] = {}
    for cert in sorted(certificates, key=lambda c: c["not_after"]):
        day = _day(cert["not_after"])
        if not start <= day <= end:
            continue
        bucket = round(x(day) / DOT_GAP)
        level = heights.get(bucket, 0)
        heights[bucket] = level + 1
        dots.append((x(day), level, cert))
    levels = max(heights.values(), default=0)
    axis = top + 30 + DOT_GAP * max(levels, 3)
    height = axis + 34
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
           f'role="img" aria-label="Certificate expiry over the next {MONTHS} months" class="timeline">']
    out.append(f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>')
    for month in range(MONTHS + 1):  # month grid and labels
        day = add_months(date(start.year, start.month, 1), month + 1) if month else start
        if day > end:
            break
        gx = x(day)
        out.append(f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{axis}" stroke="{COLOURS["grid"]}"/>')
        if day.month in (1, 4, 7, 10) and month:  # today has its own labelled line
            out.append(f'<text x="{gx:.1f}" y="{axis + 16}" font-size="11" fill="{COLOURS["muted"]}" '
                       f'text-anchor="middle">{day:%b %Y}</text>')
    out.append(f'<line x1="{LEFT}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="{COLOURS["muted"]}"/>')
    for line, row in placed:
        lx = x(line.day)
        colour = COLOURS[line.kind]
        dash = "" if line.kind == "today" else ' stroke-dasharray="5 3"'
        label_y = 14 + LABEL_ROW * row
        out.append(f'<line x1="{lx:.1f}" y1="{label_y + 3}" x2="{lx:.1f}" y2="{axis}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        anchor = "end" if lx + 6.2 * len(line.label) + 10 > WIDTH else "start"
        tx = lx - 4 if anchor == "end" else lx + 4
        out.append(f'<text x="{tx:.1f}" y="{label_y}" font-size="11" fill="{colour}" text-anchor="{anchor}">'
                   f'{escape(line.label)}</text>')
    for dx, level, cert in dots:
        cy = axis - 8 - DOT_GAP * level
        colour = COLOURS.get(cert["severity"], COLOURS["info"])
        tip = f'{cert["subject"]} expires {cert["not_after"][:10]} ({cert["severity"]}: {cert["verdict"]})'
        out.append(f'<circle cx="{dx:.1f}" cy="{cy}" r="{DOT}" fill="{colour}"><title>{escape(tip)}</title></circle>')
    if expired:
        out.append(f'<text x="4" y="{axis - 8}" font-size="11" fill="{COLOURS["critical"]}">'
                   f'{len(expired)} expired</text>')
    out.append(f'<text x="{LEFT}" y="{height - 4}" font-size="11" fill="{COLOURS["muted"]}">'
               f'{len(dots)} certificates expire by {end}; dot colour = severity of the worst finding</text>')
    out.append("</svg>")
    return "\n".join(out)


def _day(stamp: str) -> date:
    return date.fromisoformat(stamp[:10])


def window(now: datetime) -> tuple[date, date]:
    return now.date(), add_months(now.date(), MONTHS)


__all__ = ["Line", "MONTHS", "add_months", "lines_for", "timeline_svg", "window"]
