"""findmnt's KEY="value" pairs, read by a pattern: the same reading a shell (shlex) gives, on
every findmnt line captured from the lab's hosts, and the refusals."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import parse_findmnt_pairs
from walguard.facts.sections import Section

DATA = Path(__file__).parent / "data"


def _captured_lines() -> list[str]:
    lines = {
        line.strip()
        for path in sorted(DATA.rglob("*.txt"))
        for line in path.read_text(errors="replace").splitlines()
        if line.startswith('TARGET="')
    }
    return sorted(lines)


def _as_shell_reads_it(line: str) -> dict[str, str]:
    return dict(token.partition("=")[::2] for token in shlex.split(line))


def test_there_are_captured_lines_to_compare() -> None:
    assert len(_captured_lines()) >= 20


@pytest.mark.parametrize("line", _captured_lines())
def test_captured_lines_read_as_a_shell_reads_them(line: str) -> None:
    assert parse_findmnt_pairs(Section("findmnt", line, 0)) == _as_shell_reads_it(line)


def test_escaped_bytes_stay_as_findmnt_wrote_them() -> None:
    # Captured from util-linux's findmnt (Debian 12) for a tmpfs on `/tmp/wg mnt"q$x\y`z`: a space
    # stays as it is; a quote, a dollar sign, a backslash and a backtick are written as \xNN, so
    # no value can end early or hide a second pair.
    line = r'TARGET="/tmp/wg mnt\x22q\x24x\x5cy\x60z" SOURCE="tmpfs" FSTYPE="tmpfs" OPTIONS="rw,relatime" MAJ:MIN="0:40" FSROOT="/"'  # noqa: E501
    pairs = parse_findmnt_pairs(Section("findmnt", line, 0))
    assert pairs == _as_shell_reads_it(line)
    assert pairs["TARGET"] == r"/tmp/wg mnt\x22q\x24x\x5cy\x60z"
    assert pairs["FSROOT"] == "/"


def test_a_value_cannot_smuggle_a_second_target() -> None:
    # An empty value, then a would-be pair inside a quoted value: one TARGET, read whole.
    line = 'TARGET="/pg_archive TARGET=/" SOURCE="" FSTYPE="ext4"'
    pairs = parse_findmnt_pairs(Section("findmnt", line, 0))
    assert pairs == _as_shell_reads_it(line)
    assert pairs["TARGET"] == "/pg_archive TARGET=/" and pairs["SOURCE"] == ""


@pytest.mark.parametrize(
    "line",
    [
        'TARGET="/pg_archive" SOURCE=/dev/loop3',  # a value without quotes
        'TARGET="/pg_archive',  # an unterminated value
        'TARGET="/a"SOURCE="/dev/x"',  # pairs not separated
        'garbage TARGET="/a"',
    ],
)
def test_lines_findmnt_does_not_write_are_refused(line: str) -> None:
    with pytest.raises(FactUnavailable, match="unparsable findmnt output"):
        parse_findmnt_pairs(Section("findmnt", line, 0))


def test_a_line_without_target_is_refused() -> None:
    with pytest.raises(FactUnavailable, match="no TARGET"):
        parse_findmnt_pairs(Section("findmnt", 'SOURCE="/dev/x"', 0))
