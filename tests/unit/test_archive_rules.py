"""archive_command reading, WAL names and gaps, and the gate's exit status."""

from __future__ import annotations

import pytest

from walguard.archive_command import identical_only_semantics, refuses_overwrite, safer_form
from walguard.results import Result, exit_status
from walguard.walnames import gaps, segment_name, segment_number

SEG = 16 * 1024 * 1024


@pytest.mark.parametrize(
    "cmd",
    [
        "test -f /pg_archive/%f || cp %p /pg_archive/%f",
        "[ -f /pg_archive/%f ] || cp %p /pg_archive/%f",
        "test ! -f /pg_archive/%f && cp %p /pg_archive/%f",
        "[ ! -f /mnt/server/archivedir/%f ] && cp %p /mnt/server/archivedir/%f",
        "if [ -f /pg_archive/%f ]; then cmp -s %p /pg_archive/%f; else cp %p /pg_archive/%f; fi",
        "cp -n %p /pg_archive/%f",
        "cp --no-clobber %p /pg_archive/%f",
        "rsync -a --ignore-existing %p /pg_archive/%f",
        "pgbackrest --stanza=main archive-push %p",
        "wal-g wal-push %p",
    ],
)
def test_guarded_forms_refuse_overwrite(cmd: str) -> None:
    assert refuses_overwrite(cmd).ok, cmd


@pytest.mark.parametrize(
    ("cmd", "why"),
    [
        ("cp %p /pg_archive/%f", "plain cp"),
        ("/bin/cp %p /pg_archive/%f", "plain cp"),
        ("rsync -a %p /pg_archive/%f", "rsync overwrites"),
        ("test -f /other/%f || cp %p /pg_archive/%f", "guard tests /other/%f"),
        ("scp %p backup:/pg_archive/%f", "not a recognised"),
        ("", "not a recognised"),
    ],
)
def test_unguarded_forms_are_flagged(cmd: str, why: str) -> None:
    verdict = refuses_overwrite(cmd)
    assert not verdict.ok
    assert why in verdict.message


def test_test_or_cp_is_flagged_at_low_severity_with_the_safer_form() -> None:
    cmd = "test -f /pg_archive/%f || cp %p /pg_archive/%f"
    verdict = identical_only_semantics(cmd)
    assert not verdict.ok
    assert "success even when the existing archived file differs" in verdict.message
    safer = safer_form(cmd)
    assert safer == (
        "if [ -f /pg_archive/%f ]; then cmp -s %p /pg_archive/%f; else cp %p /pg_archive/%f; fi"
    )
    assert refuses_overwrite(safer).ok and identical_only_semantics(safer).ok


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
