"""A tool's check is judged by what it prints, not only its exit status.

The pgBackRest outputs are captured on the lab (Debian's pgBackRest 2.45, stanza main):
- pgbackrest-verify-ok.txt: `verify --output=text --verbose` on a healthy repository (exit 0);
- pgbackrest-verify-error.txt: the same after truncating the newest archived segment: still
  exit 0, with `status: error`;
- pgbackrest-verify-no-archive-info.txt: the same after the pgbackrest-broken scenario (exit 0);
- pgbackrest-check-broken.txt: `check` after pgbackrest-broken (exit 55, on stderr).
Without --output=text, `verify` printed nothing and exited 0 in both the healthy and the broken
case.

WAL-G and Barman do not run on the lab: their outputs (walg-*.txt, barman-*.txt) are put
together from the tools' own format strings (WAL-G internal/databases/postgres/
wal_verify_output_writer.go and its tracelog prefix; Barman barman/output.py result_check), with
the shapes of the outputs quoted in their issues and tests; the values are made up.
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


WALG = "wal-g wal-verify integrity timeline"


@pytest.mark.parametrize("name", ["walg-verify-ok.txt", "walg-verify-ok.json.txt"])
def test_walg_verify_ok_passes(name: str) -> None:
    reading = read_check(WALG, 0, data(name))
    assert reading.ok is True
    assert reading.words == "integrity check status: OK; timeline check status: OK"


@pytest.mark.parametrize("name", ["walg-verify-failure.txt", "walg-verify-failure.json.txt"])
def test_walg_verify_failure_fails_although_it_exits_0(name: str) -> None:
    reading = read_check(WALG, 0, data(name))
    assert reading.ok is False and reading.words == "integrity check status: FAILURE"


def test_walg_timeline_warning_means_no_wal_in_storage() -> None:
    reading = read_check(WALG, 0, data("walg-verify-empty-storage.txt"))
    assert reading.ok is False
    assert reading.words == "timeline check status: WARNING (no WAL in storage)"


def test_walg_integrity_warning_passes_with_its_words() -> None:
    text = data("walg-verify-ok.txt").replace("integrity check status: OK",
                                              "integrity check status: WARNING")  # fmt: skip
    reading = read_check(WALG, 0, text)
    assert reading.ok is True and "integrity check status: WARNING" in reading.words


def test_walg_without_a_status_cannot_verify() -> None:
    assert read_check(WALG, 0, "INFO: 2024/01/01 12:00:00.1 Current WAL segment: x\n").ok is None
    failed = read_check(WALG, 1, "ERROR: 2024/01/01 12:00:00.1 failed to connect to PostgreSQL")
    assert failed.ok is False and "failed to connect" in failed.words


def test_barman_check_ok_passes() -> None:
    reading = read_check("barman check pg", 0, data("barman-check-ok.txt"))
    assert reading.ok is True and reading.words.startswith("every check OK")


def test_barman_failed_lines_fail_whatever_the_exit_status() -> None:
    for rc in (1, 0):
        reading = read_check("barman check pg", rc, data("barman-check-failed.txt"))
        assert reading.ok is False
        assert reading.words == (
            "WAL archive: FAILED (please make sure WAL shipping is setup); "
            "receive-wal running: FAILED (See the Barman log file for more details)"
        )


def test_barman_colours_and_nagios_are_read() -> None:
    coloured = "Server pg:\n\tPostgreSQL: \x1b[31mFAILED\x1b[0m (connection refused)\n"
    assert read_check("barman check pg", 1, coloured).words == (
        "PostgreSQL: FAILED (connection refused)"
    )
    nagios_ok = "BARMAN OK - Ready to serve the Espresso backup for pg|pg=1B pg_wals=0B\n"
    assert read_check("barman check --nagios pg", 0, nagios_ok).ok is True
    critical = ("BARMAN CRITICAL - server pg has issues * pg FAILED: WAL archive|pg=0B\n"
                "pg.WAL archive: FAILED (please make sure WAL shipping is setup)\n")  # fmt: skip
    assert read_check("barman check --nagios pg", 2, critical).ok is False


def test_barman_without_a_check_line_cannot_verify() -> None:
    assert read_check("barman check pg", 0, "").ok is None
