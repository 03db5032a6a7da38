"""The archive is really restorable, on the lab: broken segments, a bind-mounted or symlinked
archive directory, pgBackRest (verdicts agree with `pgbackrest check`), a second cluster audited
by its port, and a streaming standby that is promoted to a new timeline."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.break_cases import BASELINE_FAIL
from tests.lab.support import Audit, Lab, audit, inventory_with
from walguard.archive.walnames import parse_history, segment_name
from walguard.control_scripts import scripts
from walguard.facts.collect import collect
from walguard.facts.transport import Connection
from walguard.inventory.load import load_inventory
from walguard.lab import manage
from walguard.remediate.script_run import facts_env, run_scripts

pytestmark = pytest.mark.lab

REPOSITORY = {"WG-ACT-004", "WG-ACT-005", "WG-ACT-007"}
ARCHIVER = {"WG-ACT-001", "WG-ACT-002", "WG-ACT-003", "WG-ACT-004", "WG-ACT-005", "WG-ACT-007"}
SWITCH = "sudo -n -u postgres psql -XAtq -c 'SELECT txid_current()' -c 'SELECT pg_switch_wal()'"


@pytest.fixture
def db3(lab: Lab) -> Iterator[Any]:
    host = lab.hosts[2]
    yield host
    lab.walguard("lab", "scenario", "reset", host.name)


def _with_vars(tmp_path: Path, host: str, values: dict[str, Any], name: str = "") -> Path:
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    hosts = doc["all"]["children"]["lab"]["hosts"]
    if name:
        hosts[name] = {**hosts[host], **values}
    else:
        hosts[host].update(values)
    inv.write_text(yaml.safe_dump(doc))
    return inv


def _only_db3_fails(result: Audit, expected: set[str]) -> None:
    failed = result.by_result("db3", "FAIL") - BASELINE_FAIL
    # The lab's base backup ends in the segment that was newest when the host was made ready:
    # while no switch has come since, breaking the newest segment breaks that backup too.
    assert failed - {"WG-RST-001"} == expected, result.stdout
    if "WG-RST-001" in failed and expected & {"WG-ACT-007"}:
        assert "pg_verifybackup" in result.message("db3", "WG-RST-001") or "missing" in (
            result.message("db3", "WG-RST-001")
        ), result.stdout
    assert result.by_result("db3", "ERROR") == set(), result.stdout
    for other in ("db1", "db2"):
        assert result.by_result(other, "FAIL") == BASELINE_FAIL, result.stdout


@pytest.mark.parametrize(
    ("scenario", "fails", "named"),
    [
        ("segment-truncated", {"WG-ACT-004", "WG-ACT-007"}, "bytes (partial)"),
        ("segment-symlinked", {"WG-ACT-004", "WG-ACT-007"}, "is a symlink"),
        ("segment-foreign", {"WG-ACT-007"}, "comes from another cluster"),
    ],
)
def test_a_broken_segment_fails_and_is_named(
    lab: Lab, db3: Any, tmp_path: Path, scenario: str, fails: set[str], named: str
) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, scenario)
    result = audit(tmp_path)
    _only_db3_fails(result, fails)
    assert named in result.message(db3.name, "WG-ACT-007")
    assert result.exit_status == 1


def test_a_bind_mount_from_the_root_filesystem_is_not_a_dedicated_volume(
    lab: Lab, db3: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "archive-dir-bind-root")
    result = audit(tmp_path)
    _only_db3_fails(result, {"WG-DIR-002"})
    assert "root filesystem" in result.message(db3.name, "WG-DIR-002")


def test_a_symlinked_archive_directory_is_followed(lab: Lab, db3: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "archive-dir-symlink")
    lab.ssh(db3, SWITCH)
    result = audit(tmp_path)
    _only_db3_fails(result, set())
    assert "a symlink to" in result.message(db3.name, "WG-DIR-001")
    evidence = next(tmp_path.glob("reports-*/*/evidence/db3/collector.txt")).read_text()
    assert "archive_realpath" in evidence


def _pgbackrest_check(lab: Lab, host: Any) -> int:
    return lab.ssh(
        host, "sudo -n -u postgres pgbackrest --stanza=main check", check=False
    ).returncode


def test_pgbackrest_verdicts_agree_with_its_own_check(lab: Lab, db3: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "pgbackrest-archiving")
    unnamed = audit(tmp_path, "-k", "db3")
    assert unnamed.by_result("db3", "ERROR") >= REPOSITORY, unnamed.stdout
    assert "cannot verify" in unnamed.message("db3", "WG-ACT-004")
    assert "WG-ARC-003" in unnamed.by_result("db3", "PASS")

    inv = _with_vars(
        tmp_path, "db3", {"walguard_archive_check_command": "pgbackrest --stanza=main check"}
    )
    healthy = audit(tmp_path, "-k", "db3", inventory=inv)
    assert _pgbackrest_check(lab, db3) == 0
    assert healthy.by_result("db3", "PASS") >= REPOSITORY, healthy.stdout
    assert healthy.by_result("db3", "FAIL") == set(), healthy.stdout

    # Remediation never replaces the tool with a local copy, even when asked directly.
    target = next(t for t in load_inventory(inv) if t.name == "db3")
    conn = Connection(target)
    try:
        conn.open()
        found = facts_env(collect(target, conn=conn), target.policy)
        ran = run_scripts(conn, target, [scripts()["WG-ARC-003"]], "apply", None, found)
    finally:
        conn.close()
    assert ran["WG-ARC-003"].rc == 3 and "is an archiving tool" in ran["WG-ARC-003"].output
    now = lab.ssh(db3, "psql -XAt -d postgres -c 'SHOW archive_command'").stdout.strip()
    assert now.startswith("pgbackrest")

    # pgbackrest verify exits 0 whatever it finds: its printed status decides. --job-retry=0:
    # it would read a damaged file again after job-retry-interval's 15 s, twice below.
    verify = "pgbackrest --stanza=main verify --output=text --verbose --job-retry=0"
    inv = _with_vars(tmp_path, "db3", {"walguard_archive_check_command": verify})
    verified = audit(tmp_path, "-k", "db3", inventory=inv)
    assert verified.by_result("db3", "PASS") >= REPOSITORY, verified.stdout
    assert "status: ok" in verified.message("db3", "WG-ACT-004")
    newest = lab.ssh(
        db3, "sudo -n find /pg_archive/pgbackrest/archive/main -name '0000*.gz' | sort | tail -1"
    ).stdout.strip()
    lab.ssh(db3, f"sudo -n truncate -s 20 {newest}")
    run = lab.ssh(db3, f"sudo -n -u postgres {verify}", check=False)
    assert run.returncode == 0 and "status: error" in run.stdout  # the tool's own misbehaviour
    damaged = audit(tmp_path, "-k", "db3", inventory=inv)
    assert damaged.by_result("db3", "FAIL") >= REPOSITORY, damaged.stdout
    assert "reported failure: status: error" in damaged.message("db3", "WG-ACT-004")

    inv = _with_vars(
        tmp_path, "db3", {"walguard_archive_check_command": "pgbackrest --stanza=main check"}
    )
    lab.walguard("lab", "scenario", "apply", db3.name, "pgbackrest-broken")
    broken = audit(tmp_path, "-k", "db3", inventory=inv)
    assert _pgbackrest_check(lab, db3) != 0
    assert broken.by_result("db3", "FAIL") >= REPOSITORY, broken.stdout
    assert "check reported failure: exit 55: ERROR: [055]" in broken.message("db3", "WG-ACT-004")


SECOND = {
    "walguard_pg_port": 5433,
    "walguard_archive_dir": "/pg_archive/second",
    "walguard_require_dedicated_mount": False,
    "walguard_postgres_service": "postgresql@15-second.service",
    # The second cluster listens on loopback only: no zone reaches it, and the host's other
    # cluster is an expected listener; clients name it by the host's name (its certificate's).
    "walguard_listen_addresses": ["localhost"],
    "walguard_allowed_listeners": ["sshd:22", "chronyd:323", "postgres:5432"],
    "walguard_zones": {"zone-a": {"expect_postgres": False}, "zone-b": {"expect_postgres": False}},
    "walguard_tls_name": "db3",
}
# The main cluster's host has the second one listening beside it.
MAIN_WITH_SECOND = {"walguard_allowed_listeners": ["sshd:22", "chronyd:323", "postgres:5433"]}


def test_a_second_cluster_is_audited_by_its_port(lab: Lab, db3: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "second-cluster")
    inv = _with_vars(tmp_path, "db3", SECOND, name="db3-second")
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"]["db3"].update(MAIN_WITH_SECOND)
    inv.write_text(yaml.safe_dump(doc))
    result = audit(tmp_path, "-k", "db3", inventory=inv)
    assert result.by_result("db3", "FAIL") == BASELINE_FAIL, result.stdout
    assert result.by_result("db3-second", "ERROR") == set(), result.stdout
    assert "WG-ARC-001" in result.by_result("db3-second", "PASS")
    ids = {}
    for name in ("db3", "db3-second"):
        pg = (next(tmp_path.glob(f"reports-*/*/evidence/{name}/postgresql.json"))).read_text()
        ids[name] = yaml.safe_load(pg)["system_identifier"]
    assert ids["db3"] != ids["db3-second"]

    # second-cluster-broken is built on second-cluster: applied on top, no reset between.
    lab.walguard("lab", "scenario", "apply", db3.name, "second-cluster-broken")
    broken = audit(tmp_path, "-k", "db3", inventory=inv)
    assert "WG-ARC-001" in broken.by_result("db3-second", "FAIL"), broken.stdout
    assert "WG-ARC-001" in broken.by_result("db3", "PASS")


def test_a_standby_then_its_promotion(lab: Lab, db3: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "standby-of-db1")
    standby = audit(tmp_path)
    assert standby.by_result("db3", "NOT APPLICABLE") >= ARCHIVER, standby.stdout
    assert "standby" in standby.message("db3", "WG-ACT-001")
    assert standby.by_result("db3", "FAIL") == BASELINE_FAIL
    assert standby.by_result("db3", "ERROR") == set(), standby.stdout
    strict = _with_vars(tmp_path, "db3", {"walguard_standby_archiving": True})
    required = audit(tmp_path, "-k", "db3", inventory=strict)
    assert {"WG-ARC-001", "WG-ACT-001"} <= required.by_result("db3", "FAIL")

    lab.walguard("lab", "scenario", "apply", db3.name, "standby-promoted")
    db1 = lab.hosts[0]
    lab.ssh(db3, SWITCH)
    lab.ssh(db1, SWITCH)
    # db3 is now db1's cluster on timeline 2. Its archive volume still holds the segments of the
    # cluster it had before (another system identifier): walguard says so.
    mixed = audit(tmp_path, "-k", "db3")
    assert "comes from another cluster" in mixed.message("db3", "WG-ACT-007"), mixed.stdout
    # As with an archive shared by primary and standby: timeline 1 is db1's archived WAL.
    old = "ls /pg_archive | grep -E '^00000001[0-9A-F]{16}$'"
    lab.ssh(db3, f"sudo -n sh -c \"{old} | sed 's|^|/pg_archive/|' | xargs rm -f\"")
    names = lab.ssh(db1, f'sudo -n sh -c "{old}"').stdout.split()
    pack = subprocess.run(
        manage.ssh_argv(db1, [f"sudo -n tar -C /pg_archive -cf - {' '.join(names)}"]),
        capture_output=True,
        check=True,
    )
    subprocess.run(
        manage.ssh_argv(db3, ["sudo -n -u postgres tar -C /pg_archive -xf -"]),
        input=pack.stdout,
        check=True,
    )
    promoted = audit(tmp_path, "-k", "db3")
    assert promoted.by_result("db3", "FAIL") == BASELINE_FAIL, promoted.stdout
    message = promoted.message("db3", "WG-ACT-005")
    assert "timeline 1:" in message and "timeline 2:" in message  # the old range still checked
    # A hole in the old timeline, before the switch point, is a gap recovery would hit.
    history = lab.ssh(db3, "sudo -n cat /pg_archive/00000002.history").stdout
    switch = parse_history(history)[0][1] // (16 * 1024 * 1024)
    victim = segment_name(1, switch - 2, 16 * 1024 * 1024)
    lab.ssh(db3, f"sudo -n rm -f /pg_archive/{victim}")
    holed = audit(tmp_path, "-k", "db3")
    assert "WG-ACT-005" in holed.by_result("db3", "FAIL")
    assert victim in holed.message("db3", "WG-ACT-005")
    lab.ssh(db3, "sudo -n rm -f /pg_archive/00000002.history")
    no_history = audit(tmp_path, "-k", "db3")
    assert "00000002.history is not in" in no_history.message("db3", "WG-ACT-005")
    # db1 carries on; its own archive is untouched.
    assert audit(tmp_path, "-k", "db1").by_result("db1", "FAIL") == BASELINE_FAIL


def test_a_segment_copied_from_another_lab_host_is_foreign(
    lab: Lab, db3: Any, tmp_path: Path
) -> None:
    """Two clusters archiving to one place: db1's newest segment lands under db3's newest name."""
    db1 = lab.hosts[0]
    newest = "ls /pg_archive | grep -E '^[0-9A-F]{24}$' | sort | tail -n 1"
    src = lab.ssh(db1, f'sudo -n sh -c "{newest}"').stdout.strip()
    dst = lab.ssh(db3, f'sudo -n sh -c "{newest}"').stdout.strip()
    local = tmp_path / "segment"
    with local.open("wb") as out:
        done = subprocess.run(
            manage.ssh_argv(db1, [f"sudo -n cat /pg_archive/{src}"]), stdout=out, check=True
        )
    assert done.returncode == 0 and local.stat().st_size == 16 * 1024 * 1024
    with local.open("rb") as data:
        subprocess.run(
            manage.ssh_argv(db3, [f"sudo -n -u postgres tee /pg_archive/{dst} >/dev/null"]),
            stdin=data,
            check=True,
        )
    result = audit(tmp_path)
    _only_db3_fails(result, {"WG-ACT-007"})
    assert f"{dst} comes from another cluster" in result.message("db3", "WG-ACT-007")


PSQL = "sudo -n -u postgres psql -XAtq"
ACTIVITY = {"WG-ACT-004", "WG-ACT-005", "WG-ACT-007"}


def _set_archive_command(lab: Lab, host: Any, command: str) -> None:
    lab.ssh(host, f"{PSQL} -c \"ALTER SYSTEM SET archive_command = '{command}'\" "
                  "-c 'SELECT pg_reload_conf()'")  # fmt: skip


def _archived_counts(run_dir: Path, host: str) -> tuple[int, int]:
    """pg_stat_archiver's archived_count before the listing (the collector's reading) and a
    moment later (the server's statistics, read by psql right after the collector), from the run's
    evidence."""
    collector = (run_dir / "evidence" / host / "collector.txt").read_text()
    before = collector.split(" BEGIN archiver_before\n", 1)[1].split("|", 1)[0]
    after = json.loads((run_dir / "evidence" / host / "postgresql.json").read_text())
    return int(before), int(after["archiver"]["archived_count"])


def test_archiving_that_goes_on_while_the_host_is_read_never_fails(
    lab: Lab, db3: Any, tmp_path: Path
) -> None:
    """A backlog drains while the audit reads the host (each copy a little slow): segments are
    archived between the archive's listing and the server's statistics. The archiver's activity
    controls PASS (or say ERROR, naming the race); they never FAIL a complete archive."""
    # A backlog of 24 segments (each switch after a WAL record of its own, so that none is a
    # no-op), drained at about 0.15 s a segment: still draining when the audit lists the archive
    # a second or so later, and a copy ends every 0.15 s, so within the moment between the listing
    # and the statistics.
    emit = "SELECT pg_logical_emit_message(false, 'walguard-lab', 'x')"
    backlog = f'{PSQL} -c "{emit}" -c "SELECT pg_switch_wal()"'
    for attempt in range(3):
        _set_archive_command(lab, db3, "false")
        lab.ssh(db3, f"for i in $(seq 24); do {backlog}; done >/dev/null")
        _set_archive_command(lab, db3, "sleep 0.1; test -f /pg_archive/%f || cp %p /pg_archive/%f")
        root = tmp_path / f"race-{attempt}"
        result = audit(tmp_path, "-k", "db3 and ACT", root=root)
        assert not ACTIVITY & result.by_result("db3", "FAIL"), result.stdout
        before, after = _archived_counts(next(root.iterdir()), "db3")
        if after > before:
            return  # the race happened, and nothing FAILed
    pytest.fail("no segment was archived between the listing and the statistics in 3 tries")
