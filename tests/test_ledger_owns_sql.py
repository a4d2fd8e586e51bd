"""Only the ledger package talks to SQLite; everything else calls its typed functions and gets records."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "privca"
LEDGER = PACKAGE / "ledger"


def sql_uses(path: Path) -> list[str]:
    """Where a module imports sqlite3 or sqlite_utils, calls ``execute``/``executemany``, or reaches for a
    ledger's connection (``._conn``, or ``.conn`` as it was once called)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in ("sqlite3", "sqlite_utils")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlite3", "sqlite_utils"):
            found.append(f"{path.name}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "conn", "_conn"):
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_no_sql_outside_the_ledger_package() -> None:
    outside = [path for path in sorted(PACKAGE.rglob("*.py")) if LEDGER not in path.parents]
    assert len(outside) > 40
    found = [use for path in outside for use in sql_uses(path)]
    assert found == []


def test_the_scan_finds_sql(tmp_path: Path) -> None:
    """Negative control: the ledger's own modules are found using SQL, and so is a planted stray query."""
    assert any(".execute" in use for use in sql_uses(LEDGER / "certificates.py"))
    assert any("import sqlite3" in use for use in sql_uses(LEDGER / "db.py"))
    stray = tmp_path / "stray.py"
    stray.write_text("def count(ledger):\n    return ledger.conn.execute('SELECT count(*) FROM cas').fetchone()\n")
    assert sql_uses(stray) == ["stray.py:2: .execute", "stray.py:2: .conn"]
    stray.write_text("def count(ledger):\n    return ledger._conn.execute('SELECT count(*) FROM cas').fetchone()\n")
    assert sql_uses(stray) == ["stray.py:2: .execute", "stray.py:2: ._conn"]
