"""The package's shape, drawn from the source by scripts/import-graph: no import cycles, no import from a lower
layer into a higher one, no modules loaded by import strings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import-graph"


def graph(root: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, SCRIPT, "--json", "--root", root], capture_output=True, text=True,
                          timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_privca_has_no_cycles_and_no_upward_imports() -> None:
    code, data = graph(ROOT / "privca")
    assert data["module_cycles"] == [] and data["package_cycles"] == []
    assert data["upward"] == []
    assert data["unlayered_packages"] == []
    assert data["import_strings"] == []
    assert data["modules"] > 70 and data["layers"] == 12 and data["imports"] > 200
    assert code == 0


def test_the_graph_sees_cycles_upward_imports_and_import_strings(tmp_path: Path) -> None:
    """Negative control: the same script on a copy of privca with one of each fault reports each of them."""
    copy = tmp_path / "privca"
    shutil.copytree(ROOT / "privca", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "common" / "names.py").open("a") as handle:
        handle.write("\nfrom privca.cli import main as _main\n")  # a low layer importing the command line
    with (copy / "rules" / "names.py").open("a") as handle:
        handle.write("\nfrom privca.rules.validity import day as _day\n")
    with (copy / "rules" / "validity.py").open("a") as handle:
        handle.write("\n\ndef _late() -> None:\n    from privca.rules import names  # noqa: F401\n")
    with (copy / "inspect" / "report.py").open("a") as handle:
        handle.write("\n\ndef _load() -> None:\n    import importlib\n    importlib.import_module('privca.api')\n")
    code, data = graph(copy)
    assert code == 1
    assert "privca.common.names -> privca.cli" in data["upward"]
    assert any({"privca.rules.names", "privca.rules.validity"} <= set(cycle) for cycle in data["module_cycles"])
    assert any(where.startswith("privca/inspect/report.py:") for where in data["import_strings"])
