"""An audit report as CSV rows (spreadsheets, scripts) or as one self-contained HTML page (a change board).

The HTML comes from a jinja2 template shipped in the package, rendered with autoescaping on: certificate
subjects and SANs are attacker-controllable text and must never become markup.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

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
            record["severity"], record["verdict"], record["subject"], " ".join(record["sans"]), record["position"],
            record["issuer"], " > ".join(record["chain"]), record["root"]["kind"],
            record["root"]["name"] or record["root"]["note"],
            "+".join(record["eku"]) if record["eku"] is not None else "(any)",
            "+".join(record["key_usage"]) if record["key_usage"] is not None else "", record["key"],
            record["signature_hash"] or "", record["not_before"], record["not_after"], record["days_left"],
            "; ".join(reasons),
            record["remedy"] or "", " ".join(record["locations"]), record["fingerprint_sha256"],
        ])
    for target, message in report.errors:
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(severity="warning", verdict="unreadable", reasons=message, locations=target)
        writer.writerow(list(row.values()))
    return _defuse(out.getvalue())


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


def html_text(report: "AuditReport") -> str:
    from jinja2 import Environment, PackageLoader

    environment = Environment(loader=PackageLoader("privca.inspect", "templates"), autoescape=True, trim_blocks=True,
                              lstrip_blocks=True)
    data: dict[str, Any] = report.to_dict()
    return environment.get_template("audit_report.html.j2").render(report=data, summary=data["summary"])


__all__ = ["CSV_COLUMNS", "csv_text", "html_text"]
