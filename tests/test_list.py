"""privca list after the listing index: same answers, and the table is answered from the index alone."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def listed(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    csrs = [make_csr(f"l{i}.csr", cn=f"l{i}.example.com", sans=[f"l{i}.example.com"]) for i in range(3)]
    for days, csr in zip(("10", "20", "300"), csrs, strict=True):
        assert cli("issue", csr, "--out", tmp_path / "out", "--store", store_path, "--days", days).exit_code == 0
    return store_path


def test_expiring_within_table_json_and_csv_agree(listed: Path, cli: Any) -> None:
    table = cli("list", "--expiring-within", "30", "--store", listed)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "serial\tstatus\tprofile\tsubject\texpires"
    assert [line.split("\t")[3] for line in lines[1:]] == ["CN=l0.example.com,O=Example Ltd",
                                                           "CN=l1.example.com,O=Example Ltd"]
    records = json.loads(cli("list", "--expiring-within", "30", "--store", listed, "--json").stdout)["certificates"]
    assert [r["serial"] for r in records] == [line.split("\t")[0] for line in lines[1:]]
    assert records[0]["sans"] == [{"type": "dns", "value": "l0.example.com"}] and "pem" not in records[0]
    csv_lines = cli("list", "--expiring-within", "30", "--store", listed, "--csv").stdout.splitlines()
    assert len(csv_lines) == 3 and csv_lines[1].startswith(records[0]["serial"] + ",valid,")
    assert len(cli("list", "--store", listed).stdout.splitlines()) == 4  # negative control: all three


def test_expired_certificates_show_as_expired(listed: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timezone

    import privca.cli.ledger_cmd as ledger_cmd

    later = datetime.now(timezone.utc) + timedelta(days=15)  # issue used the real clock
    monkeypatch.setattr(ledger_cmd, "now", lambda: later)
    lines = cli("list", "--store", listed).stdout.splitlines()[1:]
    assert [line.split("\t")[1] for line in lines] == ["expired", "valid", "valid"]
    assert [line.split("\t")[1] for line in cli("list", "--status", "expired", "--store", listed).stdout.splitlines()[1:]] \
        == ["expired"]


def test_the_table_query_reads_only_the_listing_index(listed: Path) -> None:
    from privca.ledger.certificates import LISTING_COLUMNS as TABLE_COLUMNS

    conn = sqlite3.connect(listed / "privca.db")
    plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT {', '.join(TABLE_COLUMNS)} FROM certificates WHERE status = "
                        "'valid' AND not_after >= ? AND not_after <= ? ORDER BY not_after, id", ("a", "b")).fetchall()
    full = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM certificates WHERE status = 'valid' AND not_after >= ? "
                        "ORDER BY not_after, id", ("a",)).fetchall()
    conn.close()
    assert "COVERING INDEX certificates_listing" in plan[0][3]
    assert "COVERING" not in full[0][3]  # negative control: a query for every column must read the rows
