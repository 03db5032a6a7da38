"""A tool's check is judged by what it prints, not only its exit status.

The pgBackRest outputs are captured on the lab (Debian's pgBackRest 2.45, stanza main):
- pgbackrest-verify-ok.txt: `verify --output=text --verbose` on a healthy repository (exit 0);
- pgbackrest-verify-error.txt: the same after truncating the newest archived segment: still
  exit 0, with `status: error`;
- pgbackrest-verify-no-archive-info.txt: the same after the pgbackrest-broken scenario (exit 0);
- pgbackrest-check-broken.txt: `check` after pgbackrest-broken (exit 55, on stderr).
Without --output=text, `verify` printed nothing and exited 0 in both the healthy and the broken
case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from walguard.archive.check_output import read_check

DATA = Path(__file__).parent / "data"
VERIFY = "pgbackrest --stanza=main verify --output=text --verbose"


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_pgbackrest_verify_ok_passes() -> None:
    reading = read_check(VERIFY, 0, data("pgbackrest-verify-ok.txt"))
    assert reading.ok is True and reading.words == "status: ok"


@pytest.mark.parametrize("name", ["pgbackrest-verify-error.txt",
                                  "pgbackrest-verify-no-archive-info.txt"])  # fmt: skip
def test_pgbackrest_verify_error_fails_although_it_exits_0(name: str) -> None:
    reading = read_check(VERIFY, 0, data(name))
    assert reading.ok is False
    assert reading.words.startswith("status: error")


def test_pgbackrest_verify_damaged_segment_is_named_by_its_counts() -> None:
    reading = read_check(VERIFY, 0, data("pgbackrest-verify-error.txt"))
    assert "total valid WAL: 2" in reading.words and "other: 1" in reading.words


def test_pgbackrest_verify_without_a_status_cannot_verify() -> None:
    reading = read_check("pgbackrest --stanza=main verify", 0, "")
    assert reading.ok is None
    assert "--output=text" in reading.words


def test_pgbackrest_check_failure_quotes_its_error() -> None:
    reading = read_check("pgbackrest --stanza=main check", 55, data("pgbackrest-check-broken.txt"))
    assert reading.ok is False
    assert reading.words.startswith("exit 55: ERROR: [055]: unable to load info file")


def test_pgbackrest_error_line_fails_even_with_exit_0() -> None:
    # A wrapper that loses the exit status (e.g. `pgbackrest … check || true` in a script the
    # policy names) still prints pgBackRest's own ERROR line.
    reading = read_check("pgbackrest --stanza=main check", 0, data("pgbackrest-check-broken.txt"))
    assert reading.ok is False


def test_pgbackrest_check_quiet_success_passes() -> None:
    assert read_check("pgbackrest --stanza=main check", 0, "").ok is True


def test_other_tools_are_judged_by_exit_status() -> None:
    assert read_check("pg_probackup-15 validate -B /b", 0, "INFO: All backups are valid").ok
    failed = read_check("pg_probackup-15 validate -B /b", 1, "ERROR: Some backups are not valid")
    assert failed.ok is False and "ERROR: Some backups are not valid" in failed.words
