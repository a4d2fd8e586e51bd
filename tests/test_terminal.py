"""Tables in a real 80x24 terminal (tmux), colours only where wanted, TSV when piped.

The terminal tests run privca inside a detached tmux pane of 80x24 and read the screen back with capture-pane:
``-J`` joins the lines the terminal itself had to wrap, so a table wider than the pane shows up as a line longer
than 80 characters (the negative control proves it with TSV, which is not fitted).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from privca.cli.terminal import GAP, layout, render, tsv

WIDTH, HEIGHT = 80, 24


@pytest.fixture(scope="module")
def tmux() -> str:
    found = shutil.which("tmux")
    assert found, "tmux is missing; scripts/test installs it"
    return found


class Pane:
    """A detached tmux server of its own (its own socket), with one 80x24 pane."""

    def __init__(self, tmux: str, socket: str, env: dict[str, str]) -> None:
        self.tmux, self.socket, self.env = tmux, socket, env

    def run(self, command: str, extra_env: dict[str, str] | None = None, colour: bool = False) -> str:
        """Run ``command`` in a fresh 80x24 pane and return the screen and its scrollback."""
        marker = "__privca_done__"
        env = {**self.env, **(extra_env or {})}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"export {exports}; {command}; echo {marker}; sleep 60"
        name = f"t{time.monotonic_ns()}"
        subprocess.run([self.tmux, "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", name,
                        "-x", str(WIDTH), "-y", str(HEIGHT), "sh", "-c", script], check=True, timeout=30)
        try:
            deadline = time.monotonic() + 120
            while True:
                args = [self.tmux, "-L", self.socket, "capture-pane", "-p", "-J", "-S", "-500", "-t", name]
                screen = subprocess.run(args + (["-e"] if colour else []), capture_output=True, text=True,
                                        check=True, timeout=30).stdout
                if marker in screen:
                    return screen.split(marker)[0]
                assert time.monotonic() < deadline, f"no end marker in the pane:\n{screen}"
                time.sleep(0.3)
        finally:
            subprocess.run([self.tmux, "-L", self.socket, "kill-session", "-t", name], timeout=30)


@pytest.fixture
def pane(tmux: str, estate_store: Path) -> Any:
    socket = f"privca-test-{os.getpid()}-{time.monotonic_ns()}"
    env = {"PRIVCA_STORE": str(estate_store), "TERM": "xterm-256color", "PATH": os.environ.get("PATH", ""),
           "PRIVCA_PASSPHRASE": os.environ["PRIVCA_PASSPHRASE"], "HOME": os.environ.get("HOME", "/root")}
    yield Pane(tmux, socket, env)
    subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def estate_store(store_path: Path, make_csr: Any, cli: Any, tmp_path: Path) -> Path:
    """A store with long subjects and a revoked certificate, so that every table has something to squeeze."""
    for index, cn in enumerate(("expc1.collaboration-edge.example.com", "cucm-publisher.voice.example.com",
                                "unity-connection-primary.example.com")):
        csr = make_csr(f"n{index}.csr", cn=cn, sans=[cn, f"alt{index}.example.com"])
        issued = cli("issue", csr, "--out", tmp_path / "out", "--store", store_path, "--json")
        assert issued.exit_code == 0, issued.stderr
    serial = cli("list", "--store", store_path).stdout.splitlines()[1].split("\t")[0]
    assert cli("revoke", serial, "--reason", "superseded", "--store", store_path).exit_code == 0
    return store_path


PRIVCA = f"{shlex.quote(sys.executable)} -m privca"
TABLES = {  # command: header words every fitted table must keep
    "list": ("serial", "status", "subject", "expires"),
    "ca list": ("name", "status", "subject", "expires"),
    "status": ("CA", "role", "next update", "state"),
    "profiles": ("name", "EKU", "key types", "days"),
    "plan": ("when", "date", "what"),
}


@pytest.mark.parametrize("command", sorted(TABLES))
def test_tables_fit_an_80_column_terminal(pane: Pane, command: str) -> None:
    screen = pane.run(f"{PRIVCA} {command}")
    lines = screen.splitlines()
    assert lines and "Traceback" not in screen and "Error" not in screen, screen
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, f"the terminal had to wrap:\n{screen}"
    rules = [line for line in lines if line and set(line) <= {"-", " "}]
    assert rules, screen
    for rule in rules:  # the dashes under the header: one run per column, none empty
        assert all(len(run) >= 2 for run in rule.split(GAP) if run), rule
    for word in TABLES[command]:
        assert word in screen, f"{word!r} is missing:\n{screen}"


def test_serials_stay_whole_and_colours_mark_states(pane: Pane, estate_store: Path, cli: Any) -> None:
    serials = [line.split("\t")[0] for line in cli("list", "--store", estate_store).stdout.splitlines()[1:]]
    screen = pane.run(f"{PRIVCA} list", colour=True)
    for serial in serials:
        assert serial in screen  # on one line, copyable
    assert "\x1b[31mrevoked" in screen and "\x1b[32mvalid" in screen, screen


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_escape_codes_with_no_color_or_a_dumb_terminal(pane: Pane, env: dict[str, str]) -> None:
    for command in ("list", "status", "ca list", "audit --help", "list --help"):
        screen = pane.run(f"{PRIVCA} {command}", extra_env=env, colour=True)
        assert "\x1b" not in screen, (command, env, screen)
        assert "serial" in screen or "Usage" in screen or "CA" in screen, screen


def test_negative_control_a_tsv_line_is_wrapped_by_the_pane(pane: Pane) -> None:
    # TSV is not fitted: piped through cat, its lines are wider than the pane, and the -J capture sees that.
    screen = pane.run(f"{PRIVCA} list | cat")
    assert any(len(line) > WIDTH for line in screen.splitlines()), screen


def test_piped_output_is_tsv_with_a_header(estate_store: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "privca", "list", "--store", str(estate_store)],
                          capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[0] == "serial\tstatus\tprofile\tsubject\texpires"
    assert all(len(line.split("\t")) == 5 for line in lines) and "\x1b" not in done.stdout
    assert lines[1].split("\t")[4].endswith("Z")  # full timestamps for scripts, not the on-screen day


def test_layout_never_gives_a_column_zero_width() -> None:
    columns = ["name", "status", "subject", "serial", "key", "expires", "signed by"]
    rows = [["issuing-12", "active", "CN=" + "x" * 120, "ab" * 20, "rsa:4096", "2036-11-29T08:05:15Z", "root-3"]]
    for width in (20, 40, 60, 80, 100, 200):
        kept, widths = layout(columns, rows, width)
        assert kept and all(w >= 1 for w in widths)
        assert kept[0] == 0  # the first column identifies the row: never dropped
        assert {columns[i] for i in kept} | set(columns[i] for i in range(len(columns)) if i not in kept) \
            == set(columns)
        text, hidden = render(None, columns, rows, width=width, colour=False)
        assert "name" not in hidden and len(hidden) < len(columns)
        if width >= 60:  # wide enough for the whole columns: every line fits
            assert all(len(line) <= width for line in text.splitlines()), text
    text, hidden = render(None, columns, rows, width=200, colour=False)
    assert hidden == [] and "x" * 120 not in text.replace("\n", "")  # 200 columns: all kept, the subject wrapped


def test_tsv_cells_stay_on_one_line() -> None:
    assert tsv(["a", "b"], [["x\ty", "line\nbreak"]]) == "a\tb\nx y\tline break\n"


def test_control_and_bidi_characters_in_cells_are_shown_escaped() -> None:
    """A subject from a hostile certificate or a SCEP request reaches a table: it is shown, never obeyed."""
    hostile = "evil\x1b[2J\x1b]0;pwned\x07\u202eexample.com"
    for text in (tsv(["subject"], [[hostile]]),
                 render(None, ["subject"], [[hostile]], width=200, colour=False)[0]):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\u202eexample.com" in text
    # the control: colour on a terminal is still privca's own escape code, applied after the escaping
    coloured, _ = render(None, ["state"], [["valid"]], width=80, colour=True)
    assert "\x1b[32mvalid" in coloured
