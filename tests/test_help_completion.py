"""Help that can be pasted at any width, conventional metavars, one exit-code table, -V, and shell completion in
real bash, fish and zsh (offering profiles, peers, CA names and serials from the ledger)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer

from conftest import NOW
from privca.cli.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _command_paths() -> list[tuple[str, ...]]:
    from privca.cli.app import build_command

    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, path + (name,))

    walk(build_command(), ())
    return paths


def _examples(help_text: str) -> list[str]:
    """The example commands in a help text (lines that start with ``privca`` after Examples:)."""
    if "Example" not in help_text:
        return []
    tail = re.split(r"Examples?:", help_text, maxsplit=1)[1]
    return [line.strip() for line in tail.splitlines() if line.strip().startswith("privca ")]


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_examples_are_printed_verbatim_at_any_width(cli: Any, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    import inspect

    from privca.cli.app import load_command

    monkeypatch.setenv("COLUMNS", columns)
    checked = 0
    for name, _ in COMMANDS:
        target = load_command(name)
        doc = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
        shown = cli(name, "--help")
        assert shown.exit_code == 0, name
        for example in _examples(inspect.cleandoc(doc)):
            assert any(line.strip() == example for line in shown.stdout.splitlines()), (name, example)
            checked += 1
    assert checked > 40


def test_negative_control_click_rewraps_unmarked_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.cli.app import build_app

    monkeypatch.setenv("COLUMNS", "80")
    raw = typer.main.get_command(build_app("init")).commands["init"]  # without privca's help treatment
    context = raw.make_context("init", ["--root-cn", "x", "--issuing-cn", "y"])
    text = raw.get_help(context)
    example = 'privca init --root-cn "Example UC Root CA" --issuing-cn "Example UC Issuing CA 1" --org "Example Ltd"'
    assert example not in text  # click split it across lines
    from privca.cli.helptext import polish

    polished = polish(typer.main.get_command(build_app("init"))).commands["init"]
    assert example in polished.get_help(polished.make_context("init", ["--root-cn", "x", "--issuing-cn", "y"]))


def test_every_group_has_examples(cli: Any) -> None:
    groups = [name for name, _ in COMMANDS if name in {"ca", "rotate", "profiles"}]
    assert len(groups) == 3
    for group in groups:
        text = cli(group, "--help").stdout
        assert "Examples:" in text and f"privca {group}" in text.split("Examples:")[1], group


def test_metavars_are_conventional(cli: Any) -> None:
    usage = {"issue": "Usage: privca issue [OPTIONS] CSR...", "show": "Usage: privca show [OPTIONS] SERIAL",
             "revoke": "Usage: privca revoke [OPTIONS] SERIAL", "audit": "Usage: privca audit [OPTIONS] TARGET...",
             "renew": "Usage: privca renew [OPTIONS] [SERIAL]", "export": "Usage: privca export [OPTIONS] PEER"}
    for command, line in usage.items():
        assert cli(command, "--help").stdout.splitlines()[0] == line
    assert "-p, --profile PROFILE" in cli("issue", "--help").stdout
    assert "--store DIR" in cli("list", "--help").stdout
    for path in _command_paths():
        text = cli(*path, "--help").stdout
        assert not re.search(r"<(str|int|float|path)>|\{\w+\}", text), (path, text)
        assert not re.search(r"\[[a-z_]+\]", text.splitlines()[0]), (path, text)  # [serial] in the usage line


def test_negative_control_typer_alone_shows_type_metavars() -> None:
    from privca.cli.app import build_app

    raw = typer.main.get_command(build_app("issue")).commands["issue"]
    text = raw.get_help(raw.make_context("issue", ["x.csr"]))
    assert re.search(r"<(str|int|path)>|\{csrs\}", text)


def test_exit_codes_are_one_table_in_help_and_docs(cli: Any) -> None:
    from privca.cli.exitcodes import exit_code_lines, exit_codes
    from privca.common.findings import EXIT_CODES

    table = exit_codes()
    assert {0, 1, 2, 20, 21, 22} <= set(table) and set(range(3, 17)) <= set(table)
    assert {table[code] for code in EXIT_CODES.values()} <= set(table.values())
    assert sorted(EXIT_CODES.values()) == [20, 21, 22]
    from privca import errors

    codes = [cls.exit_code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.PrivcaError) and cls is not errors.PrivcaError]
    assert len(codes) == len(set(codes))  # one meaning per code
    top = cli("--help").stdout
    docs = (ROOT / "docs" / "exit-codes.md").read_text()
    for code, meaning in table.items():
        assert f"| {code} | {meaning} |" in docs, code
    for line in exit_code_lines():
        assert line in top
    typer_help = cli("list", "--help")  # a command's own help stays short; the table is the top level's
    assert "Exit codes:" not in typer_help.stdout


def test_version_options(cli: Any) -> None:
    expected = f"privca {metadata.version('privca')}\n"
    assert cli("-V").stdout == expected and cli("--version").stdout == expected
    assert cli("-V").exit_code == 0
    assert cli("-v").exit_code == 2  # negative control: -v is not an option


# --- completion in real shells ---------------------------------------------------------------------------------

@pytest.fixture
def shell_env(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path) -> dict[str, str]:
    """privca on PATH (as the installed console script) and a store with two certificates."""
    for index in range(2):
        assert cli("issue", make_csr(f"c{index}.csr", cn=f"c{index}.example.com", sans=[f"c{index}.example.com"]),
                   "--out", tmp_path / "out", "--store", store_path).exit_code == 0
    script = Path(sys.executable).parent / "privca"
    assert script.exists(), "privca's console script is not installed beside this Python"
    return {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}", "PRIVCA_STORE": str(store_path),
            "HOME": str(tmp_path)}


def _serials(cli: Any, store: str) -> list[str]:
    return [line.split("\t")[0] for line in cli("list", "--store", store).stdout.splitlines()[1:]]


def _bash(env: dict[str, str], line: str) -> list[str]:
    # "; exit": bash -c would otherwise exec a lone command, and privca would detect the shell of whoever ran the
    # tests (none at all under cron or CI) instead of this bash.
    script = subprocess.run(["bash", "-c", "privca --show-completion; exit $?"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert "complete -o default -F _privca_completion privca" in script.stdout, script.stderr
    driver = (script.stdout + '\nread -ra COMP_WORDS <<< "$LINE"; [[ "$LINE" == *" " ]] && COMP_WORDS+=("");'
              ' COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _privca_completion privca; printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "--norc", "-c", driver], env={**env, "LINE": line}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completes_commands_profiles_peers_and_serials(shell_env: dict[str, str], cli: Any) -> None:
    assert set(_bash(shell_env, "privca ")) >= {name for name, *_ in COMMANDS}
    assert _bash(shell_env, "privca iss") == ["issue"]
    assert set(_bash(shell_env, "privca issue --profile expressway-")) >= {"expressway-c", "expressway-e"}
    assert set(_bash(shell_env, "privca export c")) == {"cucm", "cms", "cube"}
    assert _bash(shell_env, "privca revoke 00 --reason key") == ["keyCompromise"]
    assert set(_bash(shell_env, "privca ca show ")) == {"root-1", "issuing-1"}
    serials = _serials(cli, shell_env["PRIVCA_STORE"])
    assert len(serials) == 2 and set(_bash(shell_env, "privca show ")) == set(serials)
    assert _bash(shell_env, f"privca show {serials[0][:6]}") == [s for s in serials if s.startswith(serials[0][:6])]
    assert "--expiring-within" in _bash(shell_env, "privca list --")


def test_negative_control_no_store_offers_no_serials_and_no_error(shell_env: dict[str, str], tmp_path: Path) -> None:
    env = {**shell_env, "PRIVCA_STORE": str(tmp_path / "nowhere")}
    assert _bash(env, "privca show ") == []  # and _bash checked that nothing reached stderr
    assert not (tmp_path / "nowhere").exists()  # a TAB creates nothing


def test_fish_completes_from_the_ledger(shell_env: dict[str, str], cli: Any) -> None:
    fish = shutil.which("fish")
    assert fish, "fish is missing; scripts/test installs it"

    def complete(line: str) -> list[str]:
        done = subprocess.run([fish, "--no-config", "-c", f"privca --show-completion | source; complete -C {line!r}"],
                              env=shell_env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [word.split("\t")[0] for word in done.stdout.splitlines()]

    assert set(complete("privca ca show ")) == {"root-1", "issuing-1"}
    assert set(complete("privca show ")) == set(_serials(cli, shell_env["PRIVCA_STORE"]))
    assert set(complete("privca check x.pem --for cu")) == {"cucm", "cube"}


def test_zsh_script_and_completions(shell_env: dict[str, str]) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is missing; scripts/test installs it"
    script = subprocess.run([sys.executable, "-m", "privca"], env={**shell_env, "_PRIVCA_COMPLETE": "source_zsh"},
                            capture_output=True, text=True, timeout=60).stdout
    assert script.lstrip().startswith("#compdef privca")
    # The real script in real zsh; _arguments and compdef (from compinit) are stood in for by ones that print what
    # zsh would offer.
    driver = ("_arguments() { print -rl -- \"$@\" }; compdef() { : }\n" + script +
              "\nwords=(privca issue --profile expressway-); CURRENT=4; _privca_completion")
    done = subprocess.run([zsh, "-f", "-c", driver], env=shell_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"expressway-c"' in done.stdout and '"expressway-e"' in done.stdout and "cucm" not in done.stdout


def test_completed_serials_are_written_as_list_shows_them(store: Any, store_path: Path, make_csr: Any,
                                                         passphrase: Any, tmp_path: Path) -> None:
    """A serial whose first byte is below 0x10 keeps its leading 0 (whole bytes, as privca list and OpenSSL show
    it); issue until there is one, so the case is always tried."""
    from types import SimpleNamespace

    from privca.authority.signer import issue
    from privca.cli.completion import _serials
    from privca.common.serials import serial_text

    issued: list[str] = []
    while not any(len(serial) % 2 for serial in issued):  # stored without its leading zero: an odd digit count
        csrs = [make_csr(f"c{len(issued) + i}.csr", cn=f"c{len(issued) + i}.example.com",
                         sans=[f"c{len(issued) + i}.example.com"]) for i in range(16)]
        issued += [done.certificate.serial for done in issue(store, csrs, passphrase, now=NOW, out_dir=tmp_path / "out")]
    offered = _serials(SimpleNamespace(params={"store": str(store_path)}, parent=None))
    assert set(offered) == {serial_text(serial) for serial in issued}
    assert all(len(word) % 2 == 0 for word in offered)  # the control: none lost its leading zero
