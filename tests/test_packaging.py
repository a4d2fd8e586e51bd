"""The package as published: MIT LICENSE in the repository and the wheel, classifiers, and every library privca
imports declared in pyproject.toml (a library that arrives only through another's dependencies can vanish)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _requirement_names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~;\[ ]", item, maxsplit=1)[0].strip().lower().replace("_", "-") for item in requirements}


def third_party_imports(source: str) -> set[str]:
    """Top-level modules imported by ``source`` that are neither privca's nor the standard library's."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name != "privca" and name not in sys.stdlib_module_names}


def undeclared(modules: set[str], declared: set[str]) -> set[str]:
    providers = metadata.packages_distributions()
    missing = set()
    for module in modules:
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & declared:
            missing.add(module)
    return missing


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _requirement_names(project["dependencies"] + project["optional-dependencies"]["hsm"])


def test_every_imported_library_is_declared() -> None:
    modules: set[str] = set()
    for path in (ROOT / "privca").rglob("*.py"):
        modules |= third_party_imports(path.read_text())
    assert {"cryptography", "typer", "jinja2", "sqlite_utils"} <= modules
    assert undeclared(modules, _declared()) == set()


def test_negative_control_an_undeclared_import_is_caught() -> None:
    # rich arrives with typer, yet privca does not declare it: importing it would be caught.
    assert undeclared(third_party_imports("from rich.table import Table\nimport json\n"), _declared()) == {"rich"}


def test_license_and_classifiers_in_the_wheel(tmp_path: Path) -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path,
                    ROOT], check=True, capture_output=True, timeout=600)
    wheel = next(tmp_path.glob("privca-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        license_name = next(name for name in names if name.endswith("licenses/LICENSE"))
        assert archive.read(license_name).decode().startswith("MIT License")
        meta = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
        assert "privca/py.typed" in names
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert "Classifier: Intended Audience :: System Administrators" in meta
    assert "Classifier: Topic :: Security :: Cryptography" in meta
