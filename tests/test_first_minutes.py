"""The first ten minutes: the README's commands exist as written, and after scripts/quickstart (run in a real
terminal, asking for the passphrase once) `source .venv/bin/activate` puts privca on the PATH for them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from privca.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {"ca", "rotate", "profiles"}


def readme_commands(text: str) -> list[list[str]]:
    """Every privca command in the README's shell blocks, as tokens (continuation lines joined, comments cut)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("#")[0].split("&&"):
                tokens = shlex.split(part.replace("$(date +%F)", "DATE"))
                if tokens and tokens[0] == "privca":
                    found.append(tokens[1:])
    return found


def problems(commands: list[list[str]], cli: Any) -> list[str]:
    known = {name for name, *_ in COMMANDS}
    wrong = []
    for tokens in commands:
        if tokens and tokens[0].startswith("-"):  # privca --install-completion and the like
            path: list[str] = []
        else:
            path = tokens[:2] if tokens and tokens[0] in GROUPS and len(tokens) > 1 and not tokens[1].startswith("-") \
                else tokens[:1]
            if not path or path[0] not in known:
                wrong.append(f"{' '.join(tokens)}: no such command")
                continue
        shown = cli(*path, "--help")
        text = shown.stdout if shown.exit_code == 0 else ""
        for option in (t.split("=")[0] for t in tokens if t.startswith("--")):
            if not re.search(rf"(^|[\s,]){re.escape(option)}([\s,]|$)", text, re.M):
                wrong.append(f"privca {' '.join(tokens)}: {option} is not an option of privca {' '.join(path)}")
    return wrong


def test_the_readme_commands_exist_as_written(cli: Any) -> None:
    commands = readme_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 15
    assert problems(commands, cli) == []


def test_negative_control_a_wrong_readme_line_is_caught(cli: Any) -> None:
    assert problems([["list", "--expiring-soon"], ["lsit"]], cli) == [
        "privca list --expiring-soon: --expiring-soon is not an option of privca list", "lsit: no such command"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a user clones it (tracked files only: no .venv, no store)."""
    target = tmp_path_factory.mktemp("clone") / "privca"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


def test_quickstart_asks_once_and_the_readme_works_after_it(checkout: Path) -> None:
    tmux = shutil.which("tmux")
    assert tmux, "tmux is missing; scripts/test installs it"
    socket, marker = f"privca-qs-{os.getpid()}", "__quickstart_done__"
    script = (f"cd {shlex.quote(str(checkout))}; unset PRIVCA_PASSPHRASE PRIVCA_STORE; scripts/quickstart; "
              f"echo {marker} rc=$?; sleep 300")
    subprocess.run([tmux, "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "qs", "-x", "120", "-y", "50",
                    "bash", "--norc", "-c", script], check=True, timeout=30)
    try:
        def screen() -> str:
            return subprocess.run([tmux, "-L", socket, "capture-pane", "-p", "-J", "-S", "-200", "-t", "qs"],
                                  capture_output=True, text=True, timeout=30).stdout

        deadline = time.monotonic() + 600  # creating .venv and installing privca
        while "passphrase" not in screen().lower():
            assert time.monotonic() < deadline and marker not in screen(), screen()
            time.sleep(1)
        subprocess.run([tmux, "-L", socket, "send-keys", "-t", "qs", "quick start passphrase", "Enter"], check=True,
                       timeout=30)
        while marker not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(1)
        shown = screen()
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True, timeout=30)
    assert f"{marker} rc=0" in shown, shown
    assert shown.lower().count("passphrase:") == 1, shown  # asked once, for init and issue alike
    assert "source .venv/bin/activate" in shown
    env = {k: v for k, v in os.environ.items() if k not in ("PRIVCA_STORE", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["PRIVCA_PASSPHRASE"] = "quick start passphrase"
    # As the README says: after the quick start, activate, then the everyday commands work from the checkout.
    after = subprocess.run(["bash", "--norc", "-c", "source .venv/bin/activate && privca list && privca status "
                            "&& privca verify && privca show \"$(privca list | sed -n 2p | cut -f1)\" --pem"],
                           cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    assert after.returncode == 0, after.stderr
    assert "CN=expc" in after.stdout and "BEGIN CERTIFICATE" in after.stdout
    # Negative control: without the activation line, the shell does not find privca.
    before = subprocess.run(["bash", "--norc", "-c", "privca list"], cwd=checkout, env=env, capture_output=True,
                            text=True, timeout=60)
    assert before.returncode == 127 and "command not found" in before.stderr
