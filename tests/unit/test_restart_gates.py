"""The staged restart's gates judged on what gates.sh printed on lab hosts (PostgreSQL 15):
- gates-roles-primary.txt / gates-roles-standby.txt: db1 with db3 streaming from it
  (standby-of-db1), asked from each side;
- gates-before-primary.txt: db1's gates before a restart, its standby streaming;
- gates-record.txt: the way back recorded on db2;
- gates-after-primary.txt: db1 after (nothing restarted: accepting at once, a switch archived,
  its standby streaming);
- gates-after-down.txt: db2 with PostgreSQL stopped (the gate waits 2 s);
- gates-rollback.txt: db2 put back from its record and started;
- gates-watch-restart.txt: the watcher during a real `systemctl restart` of db2.
"""

from __future__ import annotations

import pytest

from tests.captured import captured_sections
from walguard.errors import FactUnavailable
from walguard.facts.sections import Section
from walguard.remediate.gates import (
    downtime,
    judge_after,
    judge_before,
    read_roles,
    record_saved,
)


def test_roles_are_read_from_both_sides_of_a_replication() -> None:
    primary = read_roles(captured_sections("gates-roles-primary.txt"))
    assert (primary.standby, primary.upstream, primary.standbys) == (False, None, ("10.231.0.13",))
    standby = read_roles(captured_sections("gates-roles-standby.txt"))
    assert (standby.standby, standby.upstream, standby.standbys) == (True, "10.231.0.11", ())
    with pytest.raises(FactUnavailable, match="role in replication was not read"):
        read_roles({"roles": Section("roles", "psql: error: connection refused", 2)})


def test_the_gates_before_pass_on_a_healthy_primary_and_count_its_standby() -> None:
    gates, streaming, pending = judge_before(
        captured_sections("gates-before-primary.txt"), max_lag_s=60, backlog_max=10,
        min_free_pct=10,
    )  # fmt: skip
    assert [(g.name, g.ok) for g in gates] == [
        ("no backup running", True),
        ("standbys caught up", True),
        ("archiver backlog", True),
        ("free space", True),
    ]
    assert streaming == 1 and pending == ()
    assert "1 standby(s) within 60 s" in gates[1].said


def test_the_gates_before_fail_on_the_same_host_under_a_stricter_policy() -> None:
    gates, _, _ = judge_before(
        captured_sections("gates-before-primary.txt"), max_lag_s=0, backlog_max=10,
        min_free_pct=95,
    )  # fmt: skip
    failed = {g.name: g.said for g in gates if not g.ok}
    assert set(failed) == {"standbys caught up", "free space"}
    assert failed["standbys caught up"].startswith("10.231.0.13: streaming, replay lag 0.1 s")
    assert "(at least 95%)" in failed["free space"]


def test_gates_before_that_were_not_read_fail() -> None:
    before = captured_sections("gates-before-primary.txt")["before"]
    cut = Section("before", before.output.replace("ready|0\n", "ready|x\n"), 0)
    gates, _, _ = judge_before({"before": cut}, max_lag_s=60, backlog_max=10, min_free_pct=10)
    assert [(g.name, g.said) for g in gates if not g.ok] == [("archiver backlog", "not read")]
    (gone,), _, _ = judge_before({}, max_lag_s=60, backlog_max=10, min_free_pct=10)
    assert not gone.ok and gone.said == "the gates were not read: no output"


def test_the_way_back_names_where_it_is_and_what_it_pins() -> None:
    ok, said = record_saved(captured_sections("gates-record.txt"))
    assert ok and said.startswith("/var/lib/walguard/rollback/capture-db2: postgresql.auto.conf")
    assert "archive_mode" in said and "shared_buffers" in said
    assert "data_directory" not in said  # where the files are is no setting to pin
    assert record_saved({}) == (False, "the way back was not recorded (no output)")


def test_the_gates_after_pass_on_a_server_that_answers_and_fail_on_one_that_does_not() -> None:
    up = judge_after(captured_sections("gates-after-primary.txt"))
    assert [g.ok for g in up] == [True, True, True, True], up
    assert up[3].said == "streaming 1 of 1"
    down = judge_after(captured_sections("gates-after-down.txt"))
    assert [g.ok for g in down] == [False, False, False, False]
    assert down[0].said == "not accepting connections within 2 s"
    assert down[1].said == "not checked: the server does not accept connections"


def test_the_rollback_brought_the_server_back() -> None:
    back = captured_sections("gates-rollback.txt")["rollback"]
    assert back.rc == 0 and "setting(s) pinned" in back.output and "accepting" in back.output


def test_the_downtime_is_first_refused_to_first_accepted() -> None:
    section = captured_sections("gates-watch-restart.txt")["downtime"]
    measured = downtime(section)
    assert measured is not None and 0 < measured < 5
    assert downtime(Section("downtime", "up 10.0\n", 0)) == 0.0  # never refused
    assert downtime(Section("downtime", "up 10.0\ndown 11.0\n", 0)) is None  # never back
    assert downtime(None) is None
