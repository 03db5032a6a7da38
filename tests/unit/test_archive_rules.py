"""WAL names and gaps, and the gate's exit status (archive_command: test_archive_reading)."""

from __future__ import annotations

from walguard.archive.walnames import gaps, segment_name, segment_number
from walguard.results import Result, exit_status

SEG = 16 * 1024 * 1024


def test_segment_numbers_cross_log_boundaries() -> None:
    assert segment_number("0000000100000000000000FF", SEG) == 255
    assert segment_number("000000010000000100000000", SEG) == 256
    assert segment_name(1, 256, SEG) == "000000010000000100000000"


def test_gaps_ignore_partial_history_backup_and_other_timelines() -> None:
    names = [
        "0000000100000000000000FE",
        "0000000100000000000000FF",
        "000000010000000100000001",
        "000000010000000100000000.partial",
        "00000002.history",
        "000000010000000000000002.00000028.backup",
        "000000020000000100000005",
        "lost+found",
    ]
    assert gaps(names, 1, SEG) == [("000000010000000100000000", "000000010000000100000000")]
    assert gaps(names, 2, SEG) == []
    assert gaps(["000000010000000000000001", "000000010000000000000005"], 1, SEG) == [
        ("000000010000000000000002", "000000010000000000000004")
    ]


def _r(severity: str, result: str) -> Result:
    return Result("db1", "WG-X-001", "t", severity, result, "", "n")


def test_exit_status_gate() -> None:
    assert exit_status([], "medium") == 5
    assert exit_status([_r("high", "PASS"), _r("low", "FAIL")], "medium") == 0
    assert exit_status([_r("high", "PASS"), _r("low", "FAIL")], "low") == 1
    assert exit_status([_r("critical", "FAIL"), _r("high", "ERROR")], "medium") == 1
    assert exit_status([_r("critical", "ERROR")], "medium") == 6
    assert exit_status([_r("high", "NOT APPLICABLE")], "medium") == 0
