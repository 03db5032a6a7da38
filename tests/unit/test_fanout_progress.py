"""The status line while facts are collected: on a terminal, one line rewritten with a carriage
return and erased before pytest writes again; when the output is not a terminal, nothing.

The runs are real `walguard audit` runs on a pseudo-terminal and on a pipe, against hosts on
this machine that refuse SSH (no lab needed)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_fanout import inventory
from walguard.audit.progress import Progress
from walguard.facts.fanout import Done

REPO = Path(__file__).resolve().parents[2]
HOSTS = 4


@pytest.fixture
def refused_inventory(tmp_path: Path) -> Path:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return inventory(tmp_path, {f"db{i}": port for i in range(1, HOSTS + 1)})


def argv(tmp_path: Path, inv: Path) -> list[str]:
    return [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
            "--report-root", str(tmp_path / "reports"), "--forks", "2"]  # fmt: skip


def on_a_terminal(command: list[str]) -> str:
    """What the command wrote on a pseudo-terminal 100 columns wide."""
    leader, follower = os.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "dumb"}
    proc = subprocess.Popen(command, cwd=REPO, stdin=follower, stdout=follower, stderr=follower,
                            env=env, start_new_session=True)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_one_line_is_rewritten_then_erased(
    tmp_path: Path, refused_inventory: Path
) -> None:
    out = on_a_terminal(argv(tmp_path, refused_inventory))
    final = f"walguard: facts of {HOSTS}/{HOSTS} hosts, {HOSTS} unreachable, slowest db"
    assert final in out, out
    start = out.index("\rwalguard: facts of")
    # Every status line starts with a carriage return and never with a newline of its own.
    shown = re.findall(r"\r(walguard: facts of [^\r\n]*)", out)
    assert shown and all(len(line) <= 100 for line in shown)
    # Then the line is erased (spaces to the terminal's width, back to its start), and pytest's
    # own output goes on where the status line was: no status text is left on any line.
    end = out.index("\r" + " " * 60, start)
    assert "\r" in out[end + 1 : end + 101]
    after = out[end:]
    assert "walguard: facts of" not in after
    assert "walguard" in after and "controls selected" in after
    for line in out.replace("\r\n", "\n").split("\n"):
        visible = line.rsplit("\r", 1)[-1]
        assert "walguard: facts of" not in visible, line


def test_when_not_a_terminal_nothing_is_written(tmp_path: Path, refused_inventory: Path) -> None:
    done = subprocess.run(argv(tmp_path, refused_inventory), cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr
    assert "walguard: facts of" not in done.stdout + done.stderr
    assert "\r" not in done.stdout + done.stderr
    assert f"{HOSTS} hosts (db1, db2, db3, …): UNREACHABLE" in done.stdout


class Recorder:
    """pytest's TerminalReporter as the status line uses it (its rewrite writes `\\r` + line +
    padding), recording what reaches the terminal."""

    def __init__(self, isatty: bool) -> None:
        self.isatty = isatty
        self.text = ""

    def rewrite(self, line: str, **markup: bool) -> None:
        self.text += "\r" + line + (" " * (40 - len(line) - 1) if markup.get("erase") else "")

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
        self.text += content

    def flush(self) -> None:
        pass


def test_the_line_says_done_of_total_unreachable_and_the_slowest_host() -> None:
    now = [0.0]
    terminal = Recorder(isatty=True)
    progress = Progress(terminal, 3, clock=lambda: now[0], width=lambda: 200)
    progress.host_done(Done("db1", True, 1.5))
    now[0] = 0.05  # within the interval: not drawn again
    progress.host_done(Done("db2", False, 12.25))
    assert terminal.text.count("\r") == 1
    now[0] = 0.1
    progress.host_done(Done("db3", True, 0.5))  # the last host is always drawn
    assert progress.line() == "walguard: facts of 3/3 hosts, 1 unreachable, slowest db2 12.2 s"
    assert terminal.text.endswith("\r" + progress.line())
    progress.clear()
    assert terminal.text.endswith("\r" + " " * 39 + "\r")
    narrow_terminal = Recorder(isatty=True)
    narrow = Progress(narrow_terminal, 1, width=lambda: 25)
    narrow.host_done(Done("db1", True, 1.0))
    assert narrow_terminal.text.rstrip(" ") == "\r" + narrow.line()[:24]  # never wraps
    quiet = Recorder(isatty=False)
    Progress(quiet, 1).host_done(Done("db1", True, 1.0))
    assert quiet.text == ""
