"""WG-RST-003/004 on what real drills printed on the lab (PostgreSQL 15, a pg_basebackup plain
backup in /pg_backup, the archive in /pg_archive, scratch under /pg_scratch):
- drill-restored.txt: restored to the target, a stale scratch of a killed drill removed first;
- drill-archive-gap.txt: archive-gap applied (a segment after the backup's start deleted):
  PostgreSQL stops with "recovery ended before configured recovery target was reached";
- drill-no-space.txt: /pg_scratch a 1 MiB tmpfs: the drill does not start;
- drill-restore-host.txt: db1's drill with walguard_restore_host db3: the canary phase on db1,
  then the restore phase on db3 from db1's archive and backups, bound read-only at /restore/db1;
- drill-pgbackrest.txt: db2 archiving with pgBackRest (pgbackrest-archiving): its newest full
  backup laid down by `pgbackrest restore`, replayed with its archive-get.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from tests.captured import captured_sections
from walguard.controls import FUNCTIONS, load_all
from walguard.drill.run import NOT_ASKED
from walguard.errors import FactUnavailable
from walguard.facts.drill_result import DrillResult, parse_drill
from walguard.facts.host import HostFacts
from walguard.facts.sections import Section
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.part import Part
from walguard.policy.model import Policy

load_all()


def sections(name: str) -> dict[str, Section]:
    return captured_sections(name)


def verdict(control: str, drill: Part[DrillResult], rto: float = 60) -> Any:
    facts = HostFacts("db2", "x", True, None, Part(error="-"), Part(error="-"), Part("active"), 2)
    target = Target(
        "db2", "x", 22, None, None, False, (), MappingProxyType({}), policy=Policy(rto_minutes=rto)
    )
    return judge(FUNCTIONS[control], replace(facts, drill=drill), target)


def test_a_drill_that_reached_its_target_passes_with_its_evidence() -> None:
    drill = parse_drill(sections("drill-restored.txt"))
    assert drill.restored and (drill.a_rows, drill.b_rows) == (1, 0)
    assert drill.restored_sysid == drill.primary_sysid == "7716286500484530782"
    assert drill.stale == ("/pg_scratch/walguard-drill-20260101T000000Z-1",)
    assert drill.cleaned and drill.fatal_lines == []
    v = verdict("WG-RST-003", Part(drill))
    assert v.result == "PASS"
    assert "PostgreSQL logged 'recovery stopping before commit of transaction 730" in v.message
    assert "canary A present, B absent" in v.message
    assert "removed a stale scratch /pg_scratch/walguard-drill-20260101T000000Z-1" in v.message
    assert drill.restore_s is not None and 0 < drill.restore_s < 10
    rto = verdict("WG-RST-004", Part(drill))
    assert rto.result == "PASS" and "within the RTO of 60 min" in rto.message
    tight = verdict("WG-RST-004", Part(drill), rto=0.001)
    assert tight.result == "FAIL" and "beyond the RTO of 0.001 min" in tight.message


def test_a_hole_in_the_archive_fails_in_postgresqls_words() -> None:
    drill = parse_drill(sections("drill-archive-gap.txt"))
    assert not drill.restored and drill.cleaned
    v = verdict("WG-RST-003", Part(drill))
    assert v.result == "FAIL"
    assert "FATAL: recovery ended before configured recovery target was reached" in v.message
    assert verdict("WG-RST-004", Part(drill)).result == "ERROR"


def test_a_drill_that_cannot_start_is_an_error_with_its_reason() -> None:
    with pytest.raises(FactUnavailable, match="cannot drill: /pg_scratch has 1048576 bytes free"):
        parse_drill(sections("drill-no-space.txt"))
    for control in ("WG-RST-003", "WG-RST-004"):
        assert verdict(control, Part(error=NOT_ASKED)).result == "ERROR"


def _edited(name: str, section: str, old: str, new: str) -> DrillResult:
    found = sections(name)
    s = found[section]
    assert old in s.output, old
    return parse_drill({**found, section: replace(s, output=s.output.replace(old, new))})


def test_what_the_restored_cluster_must_show() -> None:
    # Each edit of the real output stands for a restore that went wrong in one way.
    other = _edited("drill-restored.txt", "drill_restore", "sysid 7716", "sysid 1716")
    assert "is not the primary's" in verdict("WG-RST-003", Part(other)).message
    past = _edited("drill-restored.txt", "drill_restore", "canary_b 0", "canary_b 1")
    v = verdict("WG-RST-003", Part(past))
    assert v.result == "FAIL" and "did not stop at the target" in v.message
    unreached = _edited(
        "drill-restored.txt", "drill_log", "recovery stopping before commit", "recovery going on"
    )
    assert "does not show the target" in verdict("WG-RST-003", Part(unreached)).message
    left = _edited("drill-restored.txt", "drill_cleanup", "removed", "still there:")
    assert left.cleaned  # the section's exit status says whether it was removed
    kept = replace(left, cleaned=False, cleanup="/pg_scratch/x is still there")
    assert verdict("WG-RST-003", Part(kept)).result == "ERROR"


def test_a_client_turned_away_during_recovery_is_no_failure() -> None:
    drill = parse_drill(sections("drill-restored.txt"))
    noisy = replace(
        drill,
        log=drill.log + "2026-12-06 20:57:55.100 GMT [9] FATAL:  the database system is "
        "starting up\n",
    )
    assert noisy.fatal_lines == []
    assert verdict("WG-RST-003", Part(noisy)).result == "PASS"
    panicked = replace(drill, log=drill.log + "\nPANIC:  could not locate a valid checkpoint\n")
    assert verdict("WG-RST-003", Part(panicked)).result == "FAIL"


def test_the_previous_verified_runs_drills_are_set_beside_this_weeks() -> None:
    from walguard.history.drift import previous_drills

    doc = {
        "run": {"started": "2026-11-29T03:12:00Z"},
        "hosts": {
            "db1": {"restore_drill": {"restored": True, "restore_s": 41.5}},
            "db2": {"restore_drill": {"error": "db2: cannot drill: no space"}},
            "db3": {"restore_drill": {"restored": False, "restore_s": "soon"}},
            "db4": {"controls": []},
        },
    }
    assert previous_drills(doc) == {
        "db1": {"started": "2026-11-29T03:12:00Z", "restored": True, "restore_s": 41.5},
        "db3": {"started": "2026-11-29T03:12:00Z", "restored": False, "restore_s": None},
    }


@pytest.mark.parametrize("source", ["barman", "wal-g"])
def test_a_drill_from_another_tool_is_an_error_never_a_guess(source: str) -> None:
    from walguard.drill.run import NOT_YET, run_drill

    policy = Policy(base_backup_source=source, restore_scratch_dir="/pg_scratch")
    target = Target("db1", "192.0.2.1", 22, None, None, True, ("all",), {}, policy)
    part, output = run_drill(None, target, "/pg_archive", 60)  # type: ignore[arg-type]
    assert part.value is None and output == ""
    assert part.error == f"{NOT_YET} (walguard_base_backup_source: {source})"


def _pgbackrest(name: str) -> Part[Any]:
    from tests.unit.test_pgbackrest_backups import FULL_AT, INCR_AT, read

    return Part(read(name, {"full": FULL_AT, "incr": INCR_AT}.get(name)))


def test_a_pgbackrest_drill_restores_the_newest_backup_its_info_named() -> None:
    from walguard.drill.run import _pgbackrest_newest

    handed = _pgbackrest_newest(_pgbackrest("incr"), "main")
    assert isinstance(handed, dict)
    assert handed["WG_SOURCE"] == "pgbackrest" and handed["WG_STANZA"] == "main"
    assert handed["WG_PGBR_SET"].endswith("I") and "_" in handed["WG_PGBR_SET"]
    assert int(handed["WG_PGBR_SIZE"]) > 0
    assert int(handed["WG_PGBR_WAL_BYTES"]) % (16 << 20) == 0


@pytest.mark.parametrize(
    ("backups", "why"),
    [
        (None, "pgBackRest's info was not read (not collected)"),
        (Part(error="cannot verify: boom"), "pgBackRest's info was not read (cannot verify: boom)"),
        ("no-backup", "pgBackRest's stanza main has no backup to restore"),
    ],
)
def test_a_pgbackrest_drill_without_a_backup_to_restore_is_an_error(
    backups: Part[Any] | str | None, why: str
) -> None:
    from walguard.drill.run import run_drill

    if isinstance(backups, str):
        backups = _pgbackrest(backups)
    target = _target(
        "db1", base_backup_source="pgbackrest", pgbackrest_stanza="main",
        restore_scratch_dir="/pg_scratch",
    )  # fmt: skip
    part, _ = run_drill(None, target, "/pg_archive", 60, backups=backups)  # type: ignore[arg-type]
    assert part.error == f"cannot drill: {why}"


def test_a_pgbackrest_drill_on_a_restore_host_is_an_error_not_a_guess() -> None:
    from walguard.drill.run import NOT_YET_THERE, run_drill

    target = _target(
        "db1", base_backup_source="pgbackrest", pgbackrest_stanza="main", restore_host="db3",
    )  # fmt: skip
    there = _target("db3", restore_scratch_dir="/pg_scratch")
    part, _ = run_drill(
        None, target, "/pg_archive", 60, restorer=there, backups=_pgbackrest("full"),  # type: ignore[arg-type]
    )  # fmt: skip
    assert part.error == f"{NOT_YET_THERE} (walguard_restore_host: db3)"


def test_a_pgbackrest_drill_passes_on_what_pgbackrest_and_postgresql_printed() -> None:
    drill = parse_drill(sections("drill-pgbackrest.txt"))
    assert drill.restored and (drill.a_rows, drill.b_rows) == (1, 0)
    assert drill.backup.endswith("F") and drill.label == ()
    v = verdict("WG-RST-003", Part(drill))
    assert v.result == "PASS" and v.message.startswith(drill.backup), v.message


def _target(name: str, **policy: Any) -> Target:
    return Target(name, "192.0.2.1", 22, None, None, True, ("all",), {}, Policy(**policy))


def test_a_drill_on_a_restore_host_names_it_and_passes_on_its_evidence() -> None:
    drill = parse_drill(sections("drill-restore-host.txt"))
    assert drill.restored and (drill.a_rows, drill.b_rows) == (1, 0)
    assert drill.restored_sysid == drill.primary_sysid
    v = verdict("WG-RST-003", Part(replace(drill, restored_on="db3")))
    assert v.result == "PASS" and "restored on the restore host db3 and replayed" in v.message
    assert "restored on the" not in verdict("WG-RST-003", Part(drill)).message


def test_restore_hosts_are_found_among_all_hosts_or_refused_in_one_line() -> None:
    from walguard.drill.run import restore_hosts
    from walguard.policy.model import PolicyError

    db1, db3 = _target("db1", restore_host="db3"), _target("db3")
    assert restore_hosts([db1, db3]) == {"db1": db3}
    with pytest.raises(PolicyError, match=r"^host db1: walguard_restore_host: no host 'db9'"):
        restore_hosts([_target("db1", restore_host="db9"), db3])
    with pytest.raises(PolicyError, match="names the host itself"):
        restore_hosts([_target("db1", restore_host="db1")])


def test_the_restore_phase_runs_with_the_restore_hosts_scratch_and_the_shared_paths() -> None:
    import shlex

    from walguard.drill.run import drill_command

    db1 = _target(
        "db1", base_backup_dir="/pg_backup", restore_scratch_dir="/db1-scratch",
        restore_host="db3", restore_archive_dir="/restore/db1/pg_archive",
        restore_backup_dir="/restore/db1/pg_backup", restore_memory_max="8G",
    )  # fmt: skip
    db3 = _target(
        "db3", restore_scratch_dir="/pg_scratch", archive_owner="pgrestore",
        restore_memory_max="1G",
    )  # fmt: skip
    handed = {"WG_TARGET_TIME": "2026-12-07 02:40:37.131184", "WG_SWITCHED": "0" * 24}
    words = shlex.split(
        drill_command(db1, "/pg_archive", "@@T@@", 60, phase="restore", restorer=db3,
                      handed=handed)
    )  # fmt: skip
    env = dict(w.split("=", 1) for w in words[1 : words.index("timeout")])
    assert env["WG_PHASE"] == "restore"
    assert env["WG_ARCHIVE_DIR"] == "/restore/db1/pg_archive"
    assert env["WG_BACKUP_DIR"] == "/restore/db1/pg_backup"
    assert (env["WG_SCRATCH_DIR"], env["WG_PG_OWNER"]) == ("/pg_scratch", "pgrestore")
    assert env["WG_MEMORY_MAX"] == "1G"
    assert env["WG_TARGET_TIME"] == "2026-12-07 02:40:37.131184"
    canary = shlex.split(drill_command(db1, "/pg_archive", "@@T@@", 60, phase="canary"))
    assert "WG_ARCHIVE_DIR=/pg_archive" in canary and "WG_BACKUP_DIR=/pg_backup" in canary


@pytest.mark.parametrize(
    "line",
    [
        "target 2026-12-07 02:40:37'; rm -rf /; '",
        "switched ../../etc/passwd",
        "a walguard-x$(id)-1-A|0/1|2026-12-07 02:40:36.092894",
    ],
)
def test_what_the_canary_phase_hands_on_is_checked_before_it_reaches_the_restore_host(
    line: str,
) -> None:
    from walguard.drill.run import _handed

    good = {
        "a": "a walguard-20261207T024036Z-392-A|0/60249A0|2026-12-07 02:40:36.092894",
        "target": "target 2026-12-07 02:40:37.131184",
        "switched": "switched 000000010000000000000006",
    }
    assert _handed("\n".join(good.values()))["WG_CANARY_ID"] == "walguard-20261207T024036Z-392"
    good[line.split(" ")[0]] = line
    with pytest.raises(FactUnavailable, match="cannot drill: the canary phase printed"):
        _handed("\n".join(good.values()))


@pytest.mark.parametrize(
    "archive", ['/pg_archive/x"; touch /tmp/pwned; "', "/pg_archive/$(id)", "/pg archive"]
)
def test_a_path_that_would_break_out_of_restore_command_stops_the_drill(
    tmp_path: Any, archive: str
) -> None:
    """drill.sh itself (run here with bash, as far as its first step) refuses an archive path
    that is not plain: it would go into the scratch server's restore_command, which PostgreSQL
    runs through a shell. The real path comes from the host, which no policy checked."""
    import subprocess

    from walguard.drill.run import drill_script

    env = {
        "PATH": "/usr/bin:/bin", "WG_TOKEN": "@@T@@", "WG_PHASE": "restore",
        "WG_ARCHIVE_DIR": archive, "WG_SCRATCH_DIR": str(tmp_path), "WG_BACKUP_DIR": "/nowhere",
        "WG_PG_OWNER": "postgres", "WG_SERVICE": "x", "WG_DEADLINE_S": "60",
    }  # fmt: skip
    done = subprocess.run(
        ["bash", "-c", drill_script()], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert "is not a plain path" in done.stdout and "@@T@@ END drill_prepare 2" in done.stdout
    assert not (tmp_path / ".walguard-drill.lock").exists()  # stopped before anything else
    assert not list(tmp_path.iterdir())


def test_restore_paths_in_the_inventory_must_be_plain() -> None:
    from walguard.policy.model import PolicyError, settings_for

    for key in ("restore_archive_dir", "restore_backup_dir", "restore_scratch_dir"):
        with pytest.raises(PolicyError, match=f"walguard_{key}: expected a plain path"):
            settings_for({f"walguard_{key}": '/restore/"; id; "'}, "db1")
    assert settings_for({"walguard_restore_archive_dir": "/restore/db1/pg_archive"})
