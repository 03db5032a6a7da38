"""One exit-code table for every subcommand: the README shows it, `walguard --help` and
`walguard audit --help` end with it, and each subcommand's usage errors, verify's "not a signed
run" and sign's "no timestamp" keep to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from walguard.exit_codes import TABLE, Exit, help_text, markdown_table

REPO = Path(__file__).resolve().parents[2]


def walguard(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120, check=False, env=env,
    )  # fmt: skip


def test_the_readme_shows_the_one_table() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    assert markdown_table() in section


@pytest.mark.parametrize("argv", [["--help"], ["audit", "--help"], ["audit", "-h"]])
@pytest.mark.parametrize("columns", [100, 60])
def test_help_ends_with_every_exit_code(argv: list[str], columns: int) -> None:
    done = walguard(*argv, env={**os.environ, "COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    # argparse fills to the terminal's width less 2; the epilog keeps to the same width.
    assert done.stdout.endswith("\n\n" + help_text(columns - 2))
    epilog = done.stdout.rsplit("\nexit status (", 1)[1]
    assert [int(c) for c in re.findall(r"^ {2}([ \d]\d) {2}", epilog, re.M)] == list(Exit)
    assert max(len(line) for line in epilog.splitlines()) <= columns - 2
    for m in TABLE:
        assert f"  {m.code.value:>2}  {m.commands}: " in epilog


def test_the_help_text_is_the_table_as_text() -> None:
    text = help_text(78)
    assert "`" not in text
    words = " ".join(text.split())
    for m in TABLE:
        assert " ".join(f"{m.code.value} {m.commands}: {m.text}".replace("`", "").split()) in words
    # verify's --help names its own codes in its description, and has no such epilog.
    assert "exit status (" not in walguard("verify", "--help").stdout


def test_every_code_has_exactly_one_meaning() -> None:
    codes = [m.code for m in TABLE]
    assert sorted(codes) == sorted(set(codes)) == list(Exit)


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "somewhere"],  # --ca missing
        ["merge"],  # no shard
        ["sign"],  # no run
        ["lab", "nosuchcommand"],
        ["examples", "nothing/there"],
        ["nosuchcommand"],
        ["verify", "--ca", "/nonexistent/ca.pem", "/nonexistent/run"],
    ],
)
def test_a_bad_command_line_is_a_usage_error_in_every_subcommand(argv: list[str]) -> None:
    done = walguard(*argv)
    assert done.returncode == Exit.USAGE, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_directory_without_a_signature_is_not_a_signed_run(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used: the run has no signature to check\n")
    (tmp_path / "run").mkdir()
    done = walguard("verify", str(tmp_path / "run"), "--ca", str(ca))
    assert done.returncode == Exit.UNSIGNED, done.stdout + done.stderr
    assert "not a signed run" in done.stdout
