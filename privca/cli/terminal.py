"""Tables and colours for a terminal, plain lines for pipes.

A table must stay readable in the 80x24 terminal an administrator opens on a jump host: columns are never squeezed
to nothing. Long text (subjects, paths) wraps at word boundaries, values that are copied (serials, dates, states)
stay whole, and when even that does not fit, the least useful columns are left out and a note on stderr says which.
Colour marks severities and states on a terminal only, and never when ``NO_COLOR`` is set (https://no-color.org) or
``TERM=dumb``. Pure Python with the standard library: no rendering library is loaded for a table.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import TextIO

from privca.common.names import escaped

GAP = "  "  # between columns
MIN_WRAP = 12  # a column that wraps is never narrower than this (or its widest cell, if smaller)

# Columns whose values stay on one line whatever the width: they are copied into other commands or read at a glance.
WHOLE = frozenset({"serial", "expires", "this update", "next update", "date", "deliver by", "needed until",
                   "not_before", "not_after", "crl #", "state", "status", "severity", "role", "days", "bytes", "left",
                   "age", "pending", "key", "when", "name", "ca", "sha256", "new", "eku"})

# Severity and state words, and the SGR colour each gets (red for act now, yellow for act soon, green for fine).
RED, YELLOW, GREEN = "31", "33", "32"
COLOURS = {
    "critical": RED, "stale": RED, "missing": RED, "expired": RED, "revoked": RED, "unreadable": RED, "error": RED,
    "fail": RED, "warning": YELLOW, "due": YELLOW, "hold": YELLOW, "now": RED, "overdue": RED,
    "fresh": GREEN, "valid": GREEN, "ok": GREEN, "pass": GREEN, "active": GREEN,
}


def colour_enabled(stream: TextIO) -> bool:
    """Colour only for a person at a terminal that can show it, and never against their wish."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM", "") == "dumb":
        return False
    return stream.isatty()


def paint(text: str, code: str, enabled: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text


def terminal_width() -> int:
    """The terminal's width ($COLUMNS first, as shells set it), 80 when it cannot be told."""
    return max(20, shutil.get_terminal_size((80, 24)).columns)


def plain_cell(value: object) -> str:
    """A cell on one line: tabs and line breaks would break both the grid and the TSV, and the control and
    bidirectional characters a hostile certificate or profile can carry are shown escaped, never obeyed."""
    return escaped(" ".join(str(value).split()))


def tsv(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Tab-separated lines with a header: stable for cut, awk and spreadsheets."""
    lines = ["\t".join(plain_cell(c) for c in columns)]
    lines += ["\t".join(plain_cell(c) for c in row) for row in rows]
    return "".join(line + "\n" for line in lines)


def is_whole(column: str) -> bool:
    return column.lower() in WHOLE


def layout(columns: Sequence[str], rows: Sequence[Sequence[str]], width: int,
           drop_first: Sequence[str] = ()) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide: (indexes kept, their widths).

    Columns are dropped in ``drop_first`` order, then from the right (never the first), until the minimum widths
    fit; the space left is shared among the wrapping columns in proportion to what they lack.
    """
    natural = [max([len(columns[i])] + [len(row[i]) for row in rows]) for i in range(len(columns))]
    minimum = [n if is_whole(columns[i]) else min(n, max(MIN_WRAP, len(columns[i]))) for i, n in enumerate(natural)]
    kept = list(range(len(columns)))
    order = [columns.index(name) for name in drop_first if name in columns]
    order += [i for i in reversed(range(1, len(columns))) if i not in order]

    def needed(indexes: list[int], sizes: list[int]) -> int:
        return sum(sizes[i] for i in indexes) + len(GAP) * (len(indexes) - 1)

    while needed(kept, minimum) > width and len(kept) > 1 and order:
        kept.remove(order.pop(0))
    widths = {i: minimum[i] for i in kept}
    spare = width - needed(kept, minimum)
    lacking = {i: natural[i] - minimum[i] for i in kept if natural[i] > minimum[i]}
    total_lack = sum(lacking.values())
    if spare >= total_lack:
        widths = {i: natural[i] for i in kept}
    elif spare > 0:
        for i, lack in lacking.items():
            widths[i] += lack * spare // total_lack
    return kept, [widths[i] for i in kept]


def render(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]], *, width: int, colour: bool,
           drop_first: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The table as text for a terminal, and the names of the columns left out to fit ``width``."""
    heads = [plain_cell(c) for c in columns]
    # On screen an expiry is a day (the time of day is in the TSV and --json): it leaves room for the subject.
    dated = {i for i, name in enumerate(heads) if name.lower() == "expires"}
    cells = [[_day(plain_cell(c)) if i in dated else plain_cell(c) for i, c in enumerate(row)] for row in rows]
    kept, widths = layout(heads, cells, width, drop_first)
    out: list[str] = []
    if title:
        out.append(paint(title, "1", colour))
    out.append(GAP.join(paint(heads[i].ljust(w), "1", colour) for i, w in zip(kept, widths)).rstrip())
    out.append(GAP.join("-" * w for w in widths))
    for row in cells:
        folded = [_fold(row[i], w) for i, w in zip(kept, widths)]
        for line_no in range(max(len(f) for f in folded)):
            parts = []
            for (i, w), lines in zip(zip(kept, widths), folded):
                text = lines[line_no] if line_no < len(lines) else ""
                code = COLOURS.get(row[i].lower(), "") if line_no == 0 else ""
                parts.append(paint(text, code, colour) + " " * (w - len(text)))
            out.append(GAP.join(parts).rstrip())
    hidden = [heads[i] for i in range(len(heads)) if i not in kept]
    return "\n".join(out) + "\n", hidden


def _day(text: str) -> str:
    return text[:10] if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text) else text


def _fold(text: str, width: int) -> list[str]:
    """Wrap after spaces and commas (subjects, lists) without changing a character; cut a piece only when it alone
    is wider than the column."""
    lines: list[str] = []
    line = ""
    for piece in re.findall(r"[^ ,]*[ ,]?", text):
        while len(piece) > width:
            if line:
                lines.append(line.rstrip())
                line = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]],
                drop_first: Sequence[str] = ()) -> None:
    """A table on stdout: a fitted grid on a terminal, TSV otherwise."""
    if not sys.stdout.isatty():
        sys.stdout.write(tsv(columns, rows))
        return
    text, hidden = render(title, columns, rows, width=terminal_width(), colour=colour_enabled(sys.stdout),
                          drop_first=drop_first)
    sys.stdout.write(text)
    sys.stdout.flush()
    if hidden:
        sys.stderr.write(f"(not shown at {terminal_width()} columns: {', '.join(hidden)}; see --json)\n")
