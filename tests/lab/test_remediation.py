"""Paired remediation on real hosts: scenario -> FAIL -> --remediate=apply -> REMEDIATED, a fresh
audit passes, and the script's check mode then says there is nothing to change."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.support import HOST_COUNT, Audit, Lab, audit, inventory_with
from walguard.control_scripts import scripts
from walguard.facts.collect import collect
from walguard.facts.transport import Connection
from walguard.inventory.load import load_inventory
from walguard.lab import settings
from walguard.remediate.script_run import facts_env, run_scripts

pytestmark = pytest.mark.lab

REF = "CHG-4711"
# A change window open all week: the restarting fixes (WG-ARC-001) run whenever the tests do.
ALWAYS = "Mon-Sun 00:00-24:00 UTC"


def _result(a: Audit, host: str, control: str) -> dict[str, Any]:
    for c in a.doc["hosts"][host]["controls"]:
        if c["control"] == control:
            return dict(c)
    raise KeyError(control)


def _check_mode(host: str, control: str, inventory: Path = settings.INVENTORY_PATH) -> str:
    target = next(t for t in load_inventory(inventory) if t.name == host)
    script = scripts()[control]
    conn = Connection(target)
    try:
        conn.open()
        found = facts_env(collect(target, conn=conn), target.policy)
        ran = run_scripts(conn, target, [script], "check", None, found)[control]
    finally:
        conn.close()
    assert ran.rc == 0, ran.output
    return ran.output


@pytest.fixture
def host(lab: Lab) -> Any:
    h = lab.hosts[2]
    yield h
    lab.walguard("lab", "scenario", "reset", h.name)


CASES = [
    ("archive-mode-off-pending-restart", "WG-ARC-001"),
    ("archive-command-unguarded", "WG-ARC-003"),
    (None, "WG-ARC-004"),  # the lab's seed command is the broken state
    ("archive-timeout-off", "WG-ARC-005"),
    ("archive-dir-owner-root", "WG-DIR-003"),
    ("archive-dir-mode-0777", "WG-DIR-004"),
    ("segment-world-writable", "WG-ACT-008"),
    ("segment-root-owned", "WG-ACT-008"),
]


# Each batch breaks one host per case, on the hosts beside the lab (the first db4, the next db5,
# ...: these run beside the lab's tests), and one audit judges them all: each case is one
# control on one host, selected alone (`-k CONTROL and HOST`), so the cases cannot see each
# other's hosts. The hosts are reset together afterwards.
BATCHES = [tuple(CASES[i : i + HOST_COUNT]) for i in range(0, len(CASES), HOST_COUNT)]


def _batch_id(batch: tuple[tuple[str | None, str], ...]) -> str:
    return "+".join(f"{control}-{scenario}" for scenario, control in batch)


@pytest.fixture
def batch_hosts(beside: Lab) -> Iterator[list[Any]]:
    used: list[Any] = []
    yield used
    # Every host of the batch was remediated (changed), scenario or not: reset them together.
    if used:
        beside.walguard("lab", "scenario", "reset", *(h.name for h in used))


@pytest.mark.parametrize("batch", BATCHES, ids=[_batch_id(b) for b in BATCHES])
def test_remediate_apply_fixes_and_verifies(
    beside: Lab,
    batch_hosts: list[Any],
    tmp_path: Path,
    batch: tuple[tuple[str | None, str], ...],
) -> None:
    lab = beside
    placed = [(scenario, control, lab.hosts[i]) for i, (scenario, control) in enumerate(batch)]
    for scenario, _control, host in placed:
        batch_hosts.append(host)
        if scenario:
            lab.walguard("lab", "scenario", "apply", host.name, scenario)
    select = " or ".join(f"({control} and {host.name})" for _, control, host in placed)
    before = audit(tmp_path, "-k", select, "--fail-on", "low", inventory=lab.inventory)
    for scenario, control, host in placed:
        assert _result(before, host.name, control)["result"] == "FAIL", (scenario, host.name)

    applied = audit(
        tmp_path,
        "-k",
        select,
        "--fail-on",
        "low",
        "--remediate=apply",
        "--allow-restart",
        "--change-ref",
        REF,
        "--change-window",
        ALWAYS,
        inventory=lab.inventory,
    )
    for scenario, control, host in placed:
        res = _result(applied, host.name, control)
        assert res["result"] == "REMEDIATED", (scenario, host.name, applied.stdout)
        assert res["remediation"]["status"] == "REMEDIATED"
        assert res["remediation"]["verified_result"] == "PASS"
        assert "changed:" in res["remediation"]["output"]
        assert res["remediation"]["change_ref"] == REF
    assert applied.exit_status == 0

    fresh = audit(tmp_path, "-k", select, "--fail-on", "low", inventory=lab.inventory)
    for scenario, control, host in placed:
        assert _result(fresh, host.name, control)["result"] == "PASS", (scenario, host.name)
        checked = _check_mode(host.name, control, lab.inventory)
        assert checked == "nothing to change", (scenario, host.name)
        journal = lab.ssh(host, "sudo -n journalctl -b -t walguard --no-pager -o cat").stdout
        assert f"{control}:" in journal and f"(change {REF})" in journal, (scenario, host.name)


def test_disruptive_fix_is_refused_without_permission_then_applied_with_it(
    lab: Lab, host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", host.name, "archive-mode-off")
    select = f"WG-ARC-001 and {host.name}"
    refused = audit(tmp_path, "-k", select, "--remediate=apply")
    res = _result(refused, host.name, "WG-ARC-001")
    assert res["result"] == "FAIL"
    assert res["remediation"]["status"] == "REFUSED"
    assert "--allow-restart" in res["remediation"]["output"]
    assert refused.exit_status == 1
    assert "remediation WG-ARC-001.sh (apply): REFUSED" in refused.stdout
    assert lab.ssh(host, "psql -XAt -d postgres -c 'SHOW archive_mode'").stdout.strip() == "off"

    # Allowed, with a change reference, but outside the only window: refused, nothing changed.
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%a")
    outside = audit(tmp_path, "-k", select, "--remediate=apply", "--allow-restart",
                    "--change-ref", REF, "--change-window", f"{later} 00:00-01:00 UTC")  # fmt: skip
    res = _result(outside, host.name, "WG-ARC-001")
    assert res["result"] == "REMEDIATION REFUSED", outside.stdout
    assert res["remediation"]["output"].startswith("outside the change window (")
    assert lab.ssh(host, "psql -XAt -d postgres -c 'SHOW archive_mode'").stdout.strip() == "off"

    # --allow-disruptive, the older spelling, is the same permission.
    applied = audit(tmp_path, "-k", select, "--remediate=apply", "--allow-disruptive",
                    "--change-ref", REF, "--change-window", ALWAYS)  # fmt: skip
    res = _result(applied, host.name, "WG-ARC-001")
    assert res["result"] == "REMEDIATED", applied.stdout
    assert res["remediation"]["change_window"] == [ALWAYS] and res["remediation"]["operator"]
    assert lab.ssh(host, "psql -XAt -d postgres -c 'SHOW archive_mode'").stdout.strip() == "on"
    fresh = audit(tmp_path)
    assert fresh.by_result(host.name, "FAIL") == {"WG-ARC-004"}


def test_plan_changes_nothing_and_says_what_it_would_do(
    lab: Lab, host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", host.name, "archive-dir-owner-root")
    planned = audit(tmp_path, "-k", f"WG-DIR-003 and {host.name}", "--remediate=plan")
    res = _result(planned, host.name, "WG-DIR-003")
    assert res["result"] == "FAIL"
    assert res["remediation"]["status"] == "PLANNED"
    assert res["remediation"]["output"] == (
        "would: chown postgres:postgres /pg_archive (was root:root)"
    )
    assert lab.ssh(host, "sudo -n stat -c %U:%G /pg_archive").stdout.strip() == "root:root"


def test_no_remediation_unless_asked(lab: Lab, host: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", host.name, "archive-dir-mode-0777")
    plain = audit(tmp_path, "-k", host.name)
    assert all(c["remediation"] is None for c in plain.doc["hosts"][host.name]["controls"])
    assert lab.ssh(host, "sudo -n stat -c %a /pg_archive").stdout.strip() == "777"


def test_a_held_lock_stops_a_second_remediation(lab: Lab, host: Any, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", host.name, "archive-dir-mode-0777")
    lab.ssh(
        host,
        "sudo -n systemd-run --unit=walguard-test-lock-holder --quiet "
        "sh -c 'install -d -m 0700 /run/walguard && "
        "flock /run/walguard/remediation.lock sleep 120'",
    )
    blocked = audit(tmp_path, "-k", f"WG-DIR-004 and {host.name}", "--remediate=apply")
    res = _result(blocked, host.name, "WG-DIR-004")
    assert res["result"] == "REMEDIATION FAILED"
    assert "another walguard run is remediating this host" in res["remediation"]["output"]
    assert lab.ssh(host, "sudo -n stat -c %a /pg_archive").stdout.strip() == "777"


def test_hostile_policy_value_executes_nothing_and_one_failure_does_not_stop_others(
    lab: Lab, host: Any, tmp_path: Path
) -> None:
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][host.name]["walguard_archive_dir"] = (
        "/pg_archive; touch /tmp/pwned"
    )
    # No volume is required there, so creating the (hostile) directory is a fix, not a refusal.
    doc["all"]["children"]["lab"]["hosts"][host.name]["walguard_require_dedicated_mount"] = False
    inv.write_text(yaml.safe_dump(doc))
    result = audit(
        tmp_path,
        "-k",
        f"{host.name} and (WG-DIR-001 or WG-ARC-004)",
        "--remediate=apply",
        inventory=inv,
    )
    dir_res = _result(result, host.name, "WG-DIR-001")
    cmd_res = _result(result, host.name, "WG-ARC-004")
    assert cmd_res["result"] == "REMEDIATION REFUSED"
    assert "unsafe inside archive_command" in cmd_res["remediation"]["output"]
    assert dir_res["result"] == "REMEDIATED"  # the other script still ran
    assert lab.ssh(host, "sudo -n test -e /tmp/pwned", check=False).returncode == 1
    assert lab.ssh(host, "sudo -n test -d '/pg_archive; touch /tmp/pwned'").returncode == 0


def test_unreachable_hosts_are_not_remediated(lab: Lab, tmp_path: Path) -> None:
    inv = inventory_with(
        tmp_path, {"db9": {"ansible_host": lab.hosts[0].address, "ansible_port": 2}}
    )
    result = audit(tmp_path, "-k", "db9 or (db1 and WG-ARC-004)", "--remediate=plan", inventory=inv)
    db9 = result.doc["hosts"]["db9"]
    assert db9["reachable"] is False
    assert all(c["result"] == "ERROR" and c["remediation"] is None for c in db9["controls"])
    # The reachable host still gets its plan in the same run.
    assert _result(result, "db1", "WG-ARC-004")["remediation"]["status"] == "PLANNED"


def test_a_missing_archive_volume_is_refused_not_made_on_the_root_filesystem(
    lab: Lab, host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", host.name, "archive-dir-missing")
    applied = audit(tmp_path, "-k", f"WG-DIR-001 and {host.name}", "--remediate=apply")
    res = _result(applied, host.name, "WG-DIR-001")
    assert res["result"] == "REMEDIATION REFUSED", applied.stdout
    assert (
        "creating the directory on the root filesystem is not a fix" in res["remediation"]["output"]
    )
    assert lab.ssh(host, "test -e /pg_archive", check=False).returncode == 1
    assert applied.exit_status == 1

    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][host.name]["walguard_require_dedicated_mount"] = False
    inv.write_text(yaml.safe_dump(doc))
    allowed = audit(
        tmp_path, "-k", f"WG-DIR-001 and {host.name}", "--remediate=apply", inventory=inv
    )
    assert _result(allowed, host.name, "WG-DIR-001")["result"] == "REMEDIATED", allowed.stdout


WORSE = [
    # (archive_command, control that fails, what the refusal says)
    ("wal-g wal-push %p", "WG-ARC-003", "is an archiving tool"),
    ("/usr/local/bin/archive_wal.sh %p %f", "WG-ARC-003", "is unknown to walguard"),
    ("test ! -f /srv/other/%f && cp %p /srv/other/%f", "WG-ARC-003", "not the policy's"),
]


@pytest.mark.parametrize(("command", "control", "why"), WORSE, ids=[w[0] for w in WORSE])
def test_remediation_never_replaces_real_archiving(
    lab: Lab, host: Any, tmp_path: Path, command: str, control: str, why: str
) -> None:
    # psql interpolates :'c' (as a quoted literal) only in what it reads, not in -c.
    sql = "ALTER SYSTEM SET archive_command = :'c'; SELECT pg_reload_conf();"
    lab.ssh(
        host,
        f"echo {shlex.quote(sql)} | sudo -n -u postgres psql -XAtq -v c={shlex.quote(command)}",
    )
    applied = audit(
        tmp_path, "-k", f"WG-ARC-00 and {host.name}", "--remediate=apply", "--fail-on", "low"
    )
    res = _result(applied, host.name, control)
    assert res["result"] == "REMEDIATION REFUSED", applied.stdout
    assert why in res["remediation"]["output"]
    now = lab.ssh(host, "psql -XAt -d postgres -c 'SHOW archive_command'").stdout.strip()
    assert now == command
    assert applied.exit_status == 1


def test_remediation_refuses_with_archive_library_set(lab: Lab, host: Any, tmp_path: Path) -> None:
    sql = "ALTER SYSTEM SET archive_library = 'basic_archive'"
    lab.ssh(host, f"sudo -n -u postgres psql -XAtq -c \"{sql}\" -c 'SELECT pg_reload_conf()'")
    applied = audit(tmp_path, "-k", f"WG-ARC-003 and {host.name}", "--remediate=apply")
    res = _result(applied, host.name, "WG-ARC-003")
    assert res["result"] == "REMEDIATION REFUSED", applied.stdout
    assert "archive_library is set" in res["remediation"]["output"]
