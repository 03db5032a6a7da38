"""WG-RST-002 on facts read from real hosts: the collector's wal_window section captured on the
lab (PostgreSQL 15, the server's own pg_waldump over /pg_archive and pg_wal):
- window-idle.txt: nothing written since the last archived segment;
- window-pending.txt: commits in the current segment, seconds old, not yet switched;
- window-stalled.txt: the archiver stopped (SIGSTOP), commits 26 s apart over a switch, the
  oldest 76 s old (a recycled segment after the current one is not read);
- window-resumed.txt: the archiver resumed and the segment switched: nothing waits.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest

from tests.captured import captured_sections
from walguard.controls import FUNCTIONS, load_all
from walguard.errors import FactUnavailable
from walguard.facts.host import HostFacts
from walguard.facts.sections import Section
from walguard.facts.wal_window import WalWindow, parse_wal_window
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.part import Part
from walguard.policy.model import Policy

load_all()


def sections(name: str) -> dict[str, Section]:
    return captured_sections(name)


def captured(name: str) -> WalWindow:
    return parse_wal_window(sections(name))


def verdict(window: WalWindow | Part[WalWindow], rpo: int = 15) -> Any:
    part = window if isinstance(window, Part) else Part(window)
    facts = HostFacts("db2", "x", True, None, Part(error="-"), Part(error="-"), Part("active"), 1)
    facts = replace(facts, window=part)
    target = Target(
        "db2", "x", 22, None, None, False, (), MappingProxyType({}), policy=Policy(rpo_minutes=rpo)
    )
    return judge(FUNCTIONS["WG-RST-002"], facts, target)


def test_an_idle_server_loses_nothing_and_says_how_that_was_judged() -> None:
    window = captured("window-idle.txt")
    assert (window.boundary, window.current, window.unarchived_count) == (
        "00000001000000000000000A",
        "00000001000000000000000A",
        0,
    )
    assert window.archived_commit is not None and window.archived_commit.xid == 743
    v = verdict(window)
    assert v.result == "PASS"
    assert "no commit waits to be archived" in v.message
    assert "nothing has been written since" in v.message
    assert "the archive gives back commits up to 2026-12-06 20:27:30 UTC (xid 743" in v.message


def test_commits_in_the_current_segment_are_measured_from_the_oldest() -> None:
    window = captured("window-pending.txt")
    first = window.first_unarchived
    assert first is not None and (first.xid, first.segment) == (739, window.current)
    assert window.newest_commit is not None and window.newest_commit.xid == 741
    v = verdict(window)
    assert v.result == "PASS"
    assert "(xid 739 at 2026-12-06 20:31:08 UTC" in v.message and "waited 22 s" in v.message
    assert "within the RPO of 15 min" in v.message


def test_a_stalled_archiver_fails_once_its_oldest_commit_is_older_than_the_rpo() -> None:
    window = captured("window-stalled.txt")
    assert window.unarchived_count == 2  # 07 and the current 08; the recycled 09 is not read
    assert [s.segment for s in window.newest] == ["000000010000000000000008"]
    v = verdict(window, rpo=1)
    assert v.result == "FAIL"
    assert "(xid 739 at 2026-12-06 20:31:08 UTC, in 000000010000000000000007" in v.message
    assert "has waited 81 s" in v.message and "the newest at 2026-12-06 20:31:34 UTC" in v.message
    assert "beyond the RPO of 1 min" in v.message
    assert verdict(window, rpo=2).result == "PASS"  # the same facts, a looser objective


def test_once_archived_nothing_waits() -> None:
    v = verdict(captured("window-resumed.txt"), rpo=1)
    assert v.result == "PASS" and "no commit waits to be archived" in v.message
    assert "commits up to 2026-12-06 20:31:34 UTC (xid 743" in v.message


def _edited(name: str, old: str, new: str) -> dict[str, Section]:
    found = sections(name)
    s = found["wal_window"]
    assert old in s.output, old
    return {**found, "wal_window": replace(s, output=s.output.replace(old, new))}


def test_a_segment_pg_waldump_cannot_read_is_an_error_not_a_pass() -> None:
    # The idle capture with its current segment unreadable before any commit (as a segment
    # another cluster left, or a permission problem, would show): not measured, so ERROR.
    pending = "unarchived 000000010000000000000007|commit "
    text = sections("window-stalled.txt")["wal_window"].output
    line = next(x for x in text.splitlines() if x.startswith(pending))
    broken = _edited(
        "window-stalled.txt",
        line,
        "unarchived 000000010000000000000007|error pg_waldump: error: could not read file "
        '"000000010000000000000007": Permission denied',
    )
    v = verdict(parse_wal_window(broken))
    assert v.result == "ERROR" and "cannot read 000000010000000000000007" in v.message
    # The current segment ends where the written WAL ends: that is no error.
    ended = _edited(
        "window-pending.txt",
        line_of("window-pending.txt", "unarchived "),
        "unarchived 000000010000000000000007|error pg_waldump: error: error in WAL record at "
        "0/7016050: invalid record length at 0/7016088: wanted 24, got 0",
    )
    assert verdict(parse_wal_window(ended)).result == "PASS"
    # pg_waldump that did not run at all is not "no commit".
    gone = _edited(
        "window-pending.txt",
        line_of("window-pending.txt", "unarchived "),
        "unarchived 000000010000000000000007|error sh: 1: /usr/lib/postgresql/15/bin/pg_waldump: "
        "not found",
    )
    assert verdict(parse_wal_window(gone)).result == "ERROR"


def line_of(name: str, prefix: str) -> str:
    text = sections(name)["wal_window"].output
    return next(x for x in text.splitlines() if x.startswith(prefix))


def test_a_standby_is_not_applicable_and_nothing_archived_fails() -> None:
    standby = {"wal_window": Section("wal_window", "standby\n", 0)}
    assert verdict(parse_wal_window(standby)).result == "NOT APPLICABLE"
    none = _edited("window-idle.txt", "boundary 00000001000000000000000A", "boundary ")
    v = verdict(parse_wal_window(none))
    assert v.result == "FAIL" and "nothing has been archived" in v.message


@pytest.mark.parametrize(
    ("output", "rc", "why"),
    [
        ("", 0, "the server's clock was not read"),
        ("now 1796589097.3\ncurrent nonsense\n", 0, "current WAL file is 'nonsense'"),
        ("psql: error: connection to server failed\n", 2, "was not read (exit 2)"),
        ("now 1796589097.3\ncurrent 00000001000000000000000A\nbogus line\n", 0, "unexpected"),
    ],
)
def test_what_cannot_be_read_is_an_error(output: str, rc: int, why: str) -> None:
    with pytest.raises(FactUnavailable, match=re.escape(why)):
        parse_wal_window({"wal_window": Section("wal_window", output, rc)})
    v = verdict(Part(error=f"db2: {why}"))
    assert v.result == "ERROR"


def test_a_commit_time_in_another_zone_is_not_guessed() -> None:
    zoned = _edited(
        "window-pending.txt",
        "COMMIT 2026-12-06 20:31:08.060099 UTC",
        "COMMIT 2026-12-06 21:31:08 CET",
    )
    with pytest.raises(FactUnavailable, match="in CET, not UTC"):
        parse_wal_window(zoned)


def test_the_age_is_read_on_the_servers_clock() -> None:
    window = captured("window-pending.txt")
    assert window.now is not None and window.first_unarchived is not None
    assert window.now - window.first_unarchived.at == timedelta(seconds=22, microseconds=430924)


def test_results_json_keeps_the_measure_or_why_there_is_none() -> None:
    stalled = captured("window-stalled.txt").record()
    assert 80 < stalled["waited_s"] < 82  # the message says 81 s
    assert stalled["oldest_unarchived_commit"] == {
        "xid": 739, "at": "2026-12-06 20:31:08 UTC", "segment": "000000010000000000000007",
    }  # fmt: skip
    assert stalled["last_archived_segment"] == "000000010000000000000006"
    idle = captured("window-idle.txt").record()
    assert idle["waited_s"] == 0 and idle["oldest_unarchived_commit"] is None
    assert idle["newest_archived_commit"]["xid"] == 743
    # What the control cannot measure, the record does not measure either: never a 0.
    broken = _edited(
        "window-stalled.txt",
        line_of("window-stalled.txt", "unarchived 000000010000000000000007"),
        "unarchived 000000010000000000000007|error pg_waldump: error: Permission denied",
    )
    record = parse_wal_window(broken).record()
    assert "waited_s" not in record and "cannot read 000000010000000000000007" in record["error"]
    assert WalWindow(standby=True).record() == {"standby": True}
