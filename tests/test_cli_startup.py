"""The command line starts cheaply: `privca --help` imports neither typer nor cryptography, and the help it
prints from the COMMANDS table matches the real commands."""

from __future__ import annotations

import subprocess
import sys

from privca.cli import COMMANDS, top_level_help


def _imported_by(*args: str) -> set[str]:
    code = ("import sys\nfrom privca.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    return set(done.stderr.split())


def test_help_imports_nothing_heavy() -> None:
    modules = _imported_by("--help")
    assert not {"typer", "cryptography", "sqlite3", "rich", "pydantic"} & modules
    # Negative control: a real command does load typer (and the check would see it).
    assert "typer" in _imported_by("list", "--help")


def test_no_command_imports_rich_or_pydantic() -> None:
    modules = _imported_by("issue", "--help")
    assert "typer" in modules and not {"rich", "pydantic"} & modules


def test_the_command_table_matches_the_commands(cli) -> None:
    import inspect

    import typer

    from privca.cli.app import load_command

    for name, summary in COMMANDS:
        target = load_command(name)
        doc = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
        assert doc.splitlines()[0] == summary, name
        assert cli(name, "--help").exit_code == 0
    text = top_level_help()
    assert all(f"  {name} " in text for name, _ in COMMANDS)
    result = cli("--help")
    assert result.exit_code == 0 and result.stdout == text
    assert cli().exit_code == 2  # plain `privca`: the help, as a usage mistake


def test_a_command_imports_only_its_own_module() -> None:
    modules = _imported_by("list", "--help")
    assert "privca.cli.ledger_cmd" in modules
    assert not {m for m in modules if m.startswith("privca.cli.") and m.endswith("_cmd")} - {"privca.cli.ledger_cmd"}
    # Negative control: a command of another module loads that one instead.
    assert "privca.cli.issue_cmd" in _imported_by("issue", "--help")


def test_every_command_module_is_reached() -> None:
    from pathlib import Path

    from privca.cli.app import load_command

    folder = Path(__file__).resolve().parent.parent / "privca" / "cli"
    reached = {load_command(name).__module__ if not hasattr(load_command(name), "registered_commands")
               else None for name, _ in COMMANDS}
    assert {f"privca.cli.{path.stem}" for path in folder.glob("*_cmd.py")} - reached <= {
        "privca.cli.ca_cmd", "privca.cli.enroll_cmd", "privca.cli.profiles_cmd",
        "privca.cli.rotate_cmd"}  # Typer groups: no __module__
