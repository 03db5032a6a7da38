"""The restore drill (--restore-drill) on real lab hosts: the newest base backup restored into a
scratch cluster and replayed to a target between two canary rows; what a hole in the archive does
to it; a stale scratch left by a killed drill; a scratch volume too small to drill; production
untouched. (WG-RST-004 FAILing an RTO is judged on a real drill's output in the unit tests.)"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import browser
from tests.lab.support import Lab, audit
from walguard.lab import manage, settings
from walguard.lab.hosts import Host

pytestmark = pytest.mark.lab

DRILL = ("WG-RST-003", "WG-RST-004")


@pytest.fixture
def db2(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[1]
    yield host
    # A drill leaves production as it was (test_a_drill_leaves_production_as_it_was): only a
    # scenario needs the host reset (a reset is a reboot).
    if host.applied_scenarios():
        lab.walguard("lab", "scenario", "reset", host.name)


def _drill(tmp_path: Path, host: Host, inventory: Path = settings.INVENTORY_PATH) -> dict[str, Any]:
    result = audit(
        tmp_path, "--restore-drill", "-k", "RST-003 or RST-004", "--limit", host.name,
        inventory=inventory,
    )  # fmt: skip
    found = {c["control"]: c for c in result.doc["hosts"][host.name]["controls"]}
    assert set(found) == set(DRILL), result.stdout
    return found


def inventory_with_vars(tmp_path: Path, name: str, extra: dict[str, Any]) -> Path:
    """The lab's inventory with `extra` variables on host `name`."""
    import yaml

    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    doc["all"]["children"]["lab"]["hosts"][name].update(extra)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _scratch(lab: Lab, host: Host) -> str:
    return lab.ssh(host, f"sudo -n ls -A {settings.SCRATCH_DIR}").stdout


def test_the_drill_restores_to_its_target_and_leaves_nothing_behind(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    # A scratch a killed drill left behind, with a file in it: the next drill removes it.
    stale = f"{settings.SCRATCH_DIR}/walguard-drill-20260101T000000Z-1"
    lab.ssh(
        db2, f"sudo -n install -d -m 0700 {stale}/data && sudo -n touch {stale}/data/PG_VERSION"
    )
    found = _drill(tmp_path, db2)
    drill, rto = found["WG-RST-003"], found["WG-RST-004"]
    assert drill["result"] == "PASS", drill["message"]
    assert "recovery stopping before commit of transaction" in drill["message"]
    assert "canary A present, B absent" in drill["message"]
    assert f"removed a stale scratch {stale}" in drill["message"]
    assert rto["result"] == "PASS" and "within the RTO of 60 min" in rto["message"], rto
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"
    # The auditor's page: the drill record beside the data-loss window.
    (page,) = sorted(tmp_path.glob("reports-*/*/report.html"))
    text = browser.main_view_text(browser.dump_dom(page))
    assert "Restore drill" in text and "target reached" in text, text
    assert "A present, B absent" in text and "/ 60 min" in text, text


def test_every_database_host_drills_and_db1_on_its_restore_host(lab: Lab, tmp_path: Path) -> None:
    """The pristine lab: every database host's drill PASSes, db1's on the restore host db3,
    which reads db1's archive and backups read-only and drills its own meanwhile (one drill at a
    time there: the other waits for the lock)."""
    source, restorer = settings.RESTORE_SOURCE, settings.RESTORE_HOST
    result = audit(tmp_path, "--restore-drill", "-k", "RST-003 or RST-004", "--limit", "lab")
    hosts = result.doc["hosts"]
    assert set(hosts) == {h.name for h in lab.hosts if not h.is_probe}, result.stdout
    for name, host in hosts.items():
        found = {c["control"]: c for c in host["controls"]}
        for control in DRILL:
            assert found[control]["result"] == "PASS", (name, found[control]["message"])
        expected = restorer if name == source else None
        assert host["restore_drill"]["restore_host"] == expected, name
    drilled = {c["control"]: c for c in hosts[source]["controls"]}["WG-RST-003"]["message"]
    assert f"restored on the restore host {restorer} and replayed" in drilled
    by_name = {h.name: h for h in lab.hosts}
    assert _scratch(lab, by_name[restorer]) == ".walguard-drill.lock\n"
    # What the restore host sees of db1 it cannot change.
    shared = f"{settings.RESTORE_MOUNT}/{source}{settings.ARCHIVE_DIR}"
    refused = lab.ssh(by_name[restorer], f"sudo -n touch {shared}/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused
    (page,) = sorted(tmp_path.glob("reports-*/*/report.html"))
    text = browser.main_view_text(browser.dump_dom(page))
    assert f"restored on {restorer}" in text, text


def test_a_pgbackrest_backup_is_restored_by_pgbackrest_and_leaves_its_repository_alone(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    """db2 archives with the real pgBackRest and has a full backup in its repository: WG-RST-001
    reads it and the drill restores it with `pgbackrest restore` and replays with its
    archive-get, leaving no new timeline in the repository and no log in production's."""
    lab.walguard("lab", "scenario", "apply", db2.name, "pgbackrest-archiving")
    inventory = inventory_with_vars(
        tmp_path, db2.name,
        {"walguard_base_backup_source": "pgbackrest", "walguard_pgbackrest_stanza": "main"},
    )  # fmt: skip
    result = audit(
        tmp_path, "--restore-drill", "-k", "RST-001 or RST-003 or RST-004", "--limit", db2.name,
        inventory=inventory,
    )  # fmt: skip
    found = {c["control"]: c for c in result.doc["hosts"][db2.name]["controls"]}
    for control in ("WG-RST-001", *DRILL):
        assert found[control]["result"] == "PASS", (control, found[control]["message"])
    label = result.doc["hosts"][db2.name]["restore_drill"]["backup"]
    assert label.endswith("F") and found["WG-RST-003"]["message"].startswith(label)
    assert "recovery stopping before commit" in found["WG-RST-003"]["message"]
    (evidence,) = sorted(tmp_path.glob(f"reports-*/*/evidence/{db2.name}/restore_drill.txt"))
    assert f"INFO: repo1: restore backup set {label}," in evidence.read_text()
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"
    after = lab.ssh(
        db2, "sudo -n find /pg_archive/pgbackrest/archive/main -name '00000002*'; "
        "sudo -n ls /var/log/pgbackrest",
    ).stdout  # fmt: skip
    assert "00000002" not in after and "restore" not in after and "archive-get" not in after


def test_a_command_planted_in_the_backups_configuration_never_runs(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    """The backup's postgresql.auto.conf carries a recovery_end_command (a compromised database
    host could plant one for its restore host): the drill still restores, and it never runs."""
    pwned = "/tmp/walguard-drill-pwned"
    plant = (
        f"b=$(ls -d {settings.BACKUP_DIR}/*/ | tail -n 1); "
        f'echo "recovery_end_command = \'touch {pwned}\'" >> "$b/postgresql.auto.conf"'
    )
    lab.ssh(db2, f"sudo -n sh -c {shlex.quote(plant)}")
    try:
        found = _drill(tmp_path, db2)
        ran = lab.ssh(db2, f"test -e {pwned}", check=False).returncode == 0
    finally:
        lab.walguard("lab", "scenario", "reset", db2.name)  # the backup as it was
    assert found["WG-RST-003"]["result"] == "PASS", found["WG-RST-003"]["message"]
    assert not ran, "the backup's recovery_end_command ran"


def test_a_hole_in_the_archive_fails_the_drill_in_postgresqls_words(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", db2.name, "archive-gap")
    found = _drill(tmp_path, db2)
    drill = found["WG-RST-003"]
    assert drill["result"] == "FAIL", drill["message"]
    assert "recovery ended before configured recovery target was reached" in drill["message"]
    assert found["WG-RST-004"]["result"] == "ERROR"
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"


def test_too_little_scratch_space_is_an_error_with_the_figures(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    lab.ssh(db2, f"sudo -n mount -t tmpfs -o size=1m walguard-small {settings.SCRATCH_DIR}")
    try:
        found = _drill(tmp_path, db2)
    finally:
        lab.ssh(db2, f"sudo -n umount {settings.SCRATCH_DIR}")
    for control in DRILL:
        assert found[control]["result"] == "ERROR", found[control]
    assert "cannot drill:" in found["WG-RST-003"]["message"]
    assert "bytes free" in found["WG-RST-003"]["message"]


# What production is, read before and after a drill: the server's settings and identity, who
# listens, the server's own processes, and every archived file with its checksum.
SNAPSHOT = """
sudo -n -u postgres psql -XAtq -c "SELECT name || '=' || setting FROM pg_settings ORDER BY name"
sudo -n -u postgres psql -XAtq -c "SELECT 'sysid=' || system_identifier FROM pg_control_system()"
echo '--- listeners'; sudo -n ss -H -tlnp | awk '{print $4}' | sort
echo '--- processes'
ps -u postgres -o args= | grep -E '^(/usr/lib/postgresql/[0-9]+/bin/postgres|postgres: 15/main: )' \
  | grep -vE 'postgres: 15/main: (postgres|walguard) ' | sed 's/: archiver .*/: archiver/' | sort
echo '--- archive'
sudo -n find /pg_archive -maxdepth 1 -type f -exec sha256sum {} + \\
  | awk '{sub(".*/", "", $2); print $2, $1}' | sort
"""


def _snapshot(lab: Lab, host: Host) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"settings": []}
    key = "settings"
    for line in lab.ssh(host, SNAPSHOT).stdout.splitlines():
        if line.startswith("--- "):
            key = line[4:]
            parts[key] = []
        else:
            parts[key].append(line)
    return parts


def test_a_drill_leaves_production_as_it_was(lab: Lab, db2: Host, tmp_path: Path) -> None:
    before = _snapshot(lab, db2)
    assert before["listeners"] and len(before["processes"]) >= 4 and before["archive"], before
    found = _drill(tmp_path, db2)
    assert found["WG-RST-003"]["result"] == "PASS", found["WG-RST-003"]["message"]
    after = _snapshot(lab, db2)
    for part in ("settings", "listeners", "processes"):
        assert after[part] == before[part], part
    assert any(line.startswith("sysid=") for line in after["settings"])
    # The archive only grew, by the primary's own WAL (the canaries' switch): nothing of the
    # scratch cluster's new timeline (its history file, its segments), nothing rewritten.
    old = dict(line.split(" ") for line in before["archive"])
    new = dict(line.split(" ") for line in after["archive"])
    assert {name: new.get(name) for name in old} == old
    added = sorted(set(new) - set(old))
    assert added and all(name.startswith("00000001") and len(name) == 24 for name in added), added


def test_a_drill_killed_midway_is_cleaned_up_by_the_next(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    """The drill's own process is killed (SIGKILL: no trap runs) while its scratch server is up:
    the server and the scratch stay behind until the next drill stops and removes them."""
    # On the host: wait for a scratch server's pid file, then kill the drill script itself.
    killer = (
        "for _ in $(seq 1 3000); do "
        f"ls {settings.SCRATCH_DIR}/walguard-drill-*/data/postmaster.pid >/dev/null 2>&1 && break; "
        "sleep 0.01; done; pkill -KILL -f '^bash -c # walguard restore drill' && echo killed"
    )
    with subprocess.Popen(
        manage.ssh_argv(db2, [f"sudo -n sh -c {shlex.quote(killer)}"]),
        stdout=subprocess.PIPE, text=True,
    ) as kill:  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "walguard.cli", "audit", "--inventory",
             str(settings.INVENTORY_PATH), "--report-root", str(tmp_path / "killed"),
             "--restore-drill", "-k", "RST-003", "--limit", db2.name],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        out, _ = kill.communicate(timeout=60)
    assert out.strip() == "killed"
    left = lab.ssh(db2, f"sudo -n sh -c 'ls -d {settings.SCRATCH_DIR}/walguard-drill-*'").stdout
    (stale,) = left.split()
    assert lab.ssh(db2, f"sudo -n test -f {stale}/data/postmaster.pid", check=False).returncode == 0
    found = _drill(tmp_path, db2)
    drill = found["WG-RST-003"]
    assert drill["result"] == "PASS", drill["message"]
    assert f"removed a stale scratch {stale}" in drill["message"]
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"
    # No scratch server of the killed drill still runs.
    procs = lab.ssh(db2, "ps -u postgres -o args=").stdout
    assert "walguard-drill" not in procs, procs
