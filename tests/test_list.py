"""privca list after the listing index: same answers, and the table is answered from the index alone."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import run_tool, snapshot


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


def _serials_from(monkeypatch: Any, numbers: list[int]) -> None:
    """The next certificates get these serials (so that leading zeros and shared prefixes are certain)."""
    from cryptography import x509 as x509_module

    pending = list(numbers)
    monkeypatch.setattr(x509_module, "random_serial_number", lambda: pending.pop(0))


def test_serials_are_whole_bytes_as_openssl_shows_them(cli: Any, store_path: Path, make_csr: Any,
                                                      monkeypatch: Any) -> None:
    # A serial whose top nibble is zero: 39 significant hex digits, 20 bytes.
    _serials_from(monkeypatch, [0x0A1B2C3D4E5F60718293A4B5C6D7E8F901234567])
    [record] = json.loads(cli("issue", make_csr("expc.csr"), "--store", store_path, "--json").stdout)["certificates"]
    openssl = run_tool("openssl", "x509", "-in", record["cert_path"], "-noout", "-serial", check=True).stdout.strip()
    assert openssl == "serial=0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
    assert record["serial"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
    table = cli("list", "--store", store_path).stdout
    assert "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567" in table  # a grep for OpenSSL's serial finds it
    for typed in (openssl.removeprefix("serial="), "a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
                  "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:01:23:45:67", "0a1b2c3d"):
        shown = cli("show", typed, "--store", store_path, "--json")
        assert shown.exit_code == 0 and json.loads(shown.stdout)["serial"] == record["serial"], (typed, shown.stderr)
    # Negative controls: seven digits are not a prefix; a prefix nothing starts with is unknown.
    for typed in ("0a1b2c3", "0a1b2c3e"):
        missing = cli("show", typed, "--store", store_path)
        assert missing.exit_code != 0 and "no such certificate" in missing.stderr


def test_a_unique_prefix_is_taken_wherever_a_serial_is_and_an_ambiguous_one_lists_the_matches(
        cli: Any, store_path: Path, make_csr: Any, monkeypatch: Any) -> None:
    _serials_from(monkeypatch, [0x3F2A9C0D11 << 120, 0x3F2A9C0D22 << 120, 0x3F2A9C0E33 << 120])
    records = [json.loads(cli("issue", make_csr(f"n{i}.csr", cn=f"n{i}.example.com", sans=[f"n{i}.example.com"]),
                              "--store", store_path, "--json").stdout)["certificates"][0] for i in range(3)]
    before = snapshot(store_path)
    ambiguous = cli("revoke", "3f2a9c0d", "--reason", "keyCompromise", "--store", store_path)
    assert ambiguous.exit_code != 0 and ambiguous.stderr.count("\n") == 1
    assert records[0]["serial"] in ambiguous.stderr and records[1]["serial"] in ambiguous.stderr
    assert records[2]["serial"] not in ambiguous.stderr and "give more digits" in ambiguous.stderr
    assert snapshot(store_path) == before
    # A longer prefix is unique: revoke, unhold, renew and show all take it.
    held = cli("revoke", "3f2a9c0d22", "--reason", "certificateHold", "--store", store_path, "--json")
    assert held.exit_code == 0 and json.loads(held.stdout)["serial"] == records[1]["serial"], held.stderr
    assert cli("unhold", "3f2a9c0d22", "--store", store_path).exit_code == 0
    _serials_from(monkeypatch, [0x11 << 150])
    renewed = cli("renew", "3f2a9c0e", "--store", store_path, "--json")
    assert renewed.exit_code == 0 and json.loads(renewed.stdout)["replaces"] == records[2]["serial"], renewed.stderr
    assert json.loads(cli("show", "3f2a9c0d11", "--store", store_path, "--json").stdout)["status"] == "valid"
