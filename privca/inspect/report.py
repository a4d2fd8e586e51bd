"""An audit report as CSV rows (spreadsheets, scripts) or as one self-contained HTML page (a change board).

The HTML comes from a jinja2 template shipped in the package, rendered with autoescaping on: certificate
subjects and SANs are attacker-controllable text and must never become markup.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from privca.inspect.audit import AuditReport

CSV_COLUMNS = ["severity", "verdict", "subject", "sans", "position", "issuer", "chain", "root_kind", "root", "eku",
               "key_usage", "key", "signature_hash", "not_before", "not_after", "days_left", "reasons", "remedy",
               "locations", "fingerprint_sha256"]


def csv_text(report: "AuditReport") -> str:
    """One row per certificate, then one row per target that could not be read (verdict ``unreadable``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in report.to_dict()["certificates"]:
        reasons = [f"{f['rule']}: {f['message']}" for f in record["findings"] if f["severity"] != "info"]
        writer.writerow([
            record["severity"], record["verdict"], record["subject"], " ".join(_san_texts(record["sans"])),
            record["position"], record["issuer_subject"], " > ".join(record["chain"]), record["root"]["kind"],
            record["root"]["name"] or record["root"]["note"],
            "+".join(record["eku"]) if record["eku"] is not None else "(any)",
            "+".join(record["key_usage"]) if record["key_usage"] is not None else "", record["key_type"],
            record["signature_hash"] or "", record["not_before"], record["not_after"], record["days_left"],
            "; ".join(reasons),
            record["remedy"] or "", " ".join(record["locations"]), record["fingerprint_sha256"],
        ])
    for target, message in report.errors:
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(severity="warning", verdict="unreadable", reasons=message, locations=target)
        writer.writerow(list(row.values()))
    return _defuse(out.getvalue())


def _san_texts(sans: list[dict[str, str]]) -> list[str]:
    """Typed SANs as people and OpenSSL write them in one cell: ``DNS:expc.example.com``."""
    prefix = {"dns": "DNS", "ip": "IP Address", "email": "email", "uri": "URI"}
    return [f"{prefix.get(san['type'], 'othername')}:{san['value']}" for san in sans]


def _defuse(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; a hostile subject must stay text (OWASP CSV
    injection). Only whole cells are touched, by prefixing a single quote."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(["'" + cell if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not _is_number(cell))
                         else cell for cell in row])
    return out.getvalue()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


DEFAULT_TITLE = "Certificate audit"
URL_AT_END = re.compile(r"^(?P<title>.*?)\s*(?P<url>https?://\S+)$")


def source_link(source: str) -> Markup:
    """``Title https://...`` (how findings name their sources) as a link; anything else as escaped text."""
    match = URL_AT_END.match(source or "")
    if match is None:
        return escape(source or "")
    title = match.group("title") or match.group("url")
    return Markup('<a href="{}">{}</a>').format(match.group("url"), title)


def html_text(report: "AuditReport", title: str | None = None) -> str:
    """One self-contained page: styles inline, the timeline as inline SVG, no script, nothing loaded from elsewhere
    (the sources are plain links, followed only when clicked)."""
    from jinja2 import Environment, PackageLoader

    from privca.inspect.timeline import lines_for, timeline_svg

    environment = Environment(loader=PackageLoader("privca.inspect", "templates"), autoescape=True, trim_blocks=True,
                              lstrip_blocks=True)
    environment.filters["source_link"] = source_link
    data: dict[str, Any] = report.to_dict()
    trust = report.trust
    sources = {"chrome": trust.chrome_source, **{ca.name: ca.source for ca in trust.cas}}
    cutoffs = [{"label": line.label, "source": sources["chrome"] if line.kind == "chrome" else
                sources.get(line.label.split(":")[0], "")}
               for line in lines_for(report.generated_at, trust) if line.kind != "today"]
    svg = timeline_svg(data["certificates"], report.generated_at, trust)
    return environment.get_template("audit_report.html.j2").render(
        report=data, summary=data["summary"], title=" ".join((title or DEFAULT_TITLE).split()), timeline=svg,
        cutoffs=cutoffs)


__all__ = ["CSV_COLUMNS", "DEFAULT_TITLE", "csv_text", "html_text", "source_link"]
