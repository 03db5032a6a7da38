"""Staged restarts on real lab hosts (--remediate with --allow-restart): two hosts whose archiving
needs a restart are fixed one after the other, each with its gates and downtime; a host that
does not come back is rolled back and the rollout stops before the next; a standby is restarted
before its primary, which gets its standby back. (A restart outside the window is refused in
test_remediation.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import browser
from tests.lab.support import Audit, Lab, audit, inventory_with
from walguard.lab.hosts import Host

pytestmark = pytest.mark.lab

REF = "CHG-5150"
ALWAYS = "Mon-Sun 00:00-24:00 UTC"
SHOW = "psql -XAt -d postgres -c 'SHOW archive_mode' -c 'SHOW shared_buffers'"


@pytest.fixture
def hosts(lab: Lab) -> Iterator[list[Host]]:
    yield lab.hosts
    lab.reset_applied()


def _restart(tmp_path: Path, names: list[str], *args: str, inventory: Path | None = None) -> Audit:
    select = f"WG-ARC-001 and ({' or '.join(names)})"
    more = {"inventory": inventory} if inventory is not None else {}
    return audit(
        tmp_path, "-k", select, "--allow-restart", "--change-ref", REF,
        "--change-window", ALWAYS, *args, **more,
    )  # fmt: skip


def _result(done: Audit, host: str) -> dict[str, Any]:
    (found,) = [c for c in done.doc["hosts"][host]["controls"] if c["control"] == "WG-ARC-001"]
    return found


def _shown(lab: Lab, host: Host) -> list[str]:
    return lab.ssh(host, SHOW).stdout.split()


def test_two_hosts_are_planned_then_restarted_one_after_the_other(
    lab: Lab, hosts: list[Host], tmp_path: Path
) -> None:
    db1, db2 = hosts[0], hosts[1]
    for h in (db1, db2):
        lab.walguard("lab", "scenario", "apply", h.name, "archive-mode-off")
    planned = _restart(tmp_path, [db1.name, db2.name], "--remediate=plan")
    rollout = planned.doc["rollout"]
    assert [s["hosts"] for s in rollout["stages"]] == [[db1.name], [db2.name]], rollout
    assert rollout["stages"][0]["canary"] and not rollout["stages"][1]["canary"]
    assert {h["status"] for h in rollout["hosts"].values()} == {"planned"}
    assert {h["role"] for h in rollout["hosts"].values()} == {"primary"}
    assert _shown(lab, db1)[0] == _shown(lab, db2)[0] == "off"  # a plan changes nothing

    applied = _restart(tmp_path, [db1.name, db2.name], "--remediate=apply")
    rollout = applied.doc["rollout"]
    assert rollout["stopped_at"] is None, applied.stdout
    for h in (db1, db2):
        assert _result(applied, h.name)["result"] == "REMEDIATED", applied.stdout
        record = rollout["hosts"][h.name]
        assert record["status"] == "restarted", record
        assert all(g["ok"] for g in record["gates_before"] + record["gates_after"]), record
        assert (
            len(record["gates_after"]) == 5 and "/var/lib/walguard/rollback/" in record["way_back"]
        )
        # The server refused connections while it restarted: a real, measured downtime.
        assert record["downtime_s"] is not None and 0 < record["downtime_s"] < 60, record
        assert _shown(lab, h)[0] == "on"
    # One after the other: the stages' lines come in order, the canary first.
    out = applied.stdout
    assert out.index(f"stage 1: {db1.name}") < out.index(f"stage 2: {db2.name}"), out
    assert applied.exit_status == 0
    (page,) = sorted(tmp_path.glob("reports-*/*/report.html"))[-1:]
    text = browser.main_view_text(browser.dump_dom(page))
    assert "Staged restart" in text and f"1 (canary) {db1.name} primary restarted" in text, text


def test_a_host_that_does_not_come_back_is_rolled_back_and_the_rollout_stops(
    lab: Lab, hosts: list[Host], tmp_path: Path
) -> None:
    db1, db2 = hosts[0], hosts[1]
    for h in (db1, db2):
        lab.walguard("lab", "scenario", "apply", h.name, "archive-mode-off")
    lab.walguard("lab", "scenario", "apply", db1.name, "restart-will-fail")
    # The gate after waits 8 s for connections, not the default 120.
    quick = inventory_with(tmp_path, {})
    doc = yaml.safe_load(quick.read_text())
    doc["all"]["children"]["lab"]["vars"]["walguard_restart_timeout_s"] = 8
    quick.write_text(yaml.safe_dump(doc))
    done = _restart(tmp_path, [db1.name, db2.name], "--remediate=apply", inventory=quick)
    rollout = done.doc["rollout"]
    assert rollout["stopped_at"] == f"{db1.name}: accepts connections", done.stdout
    first = rollout["hosts"][db1.name]
    assert first["status"] == "rolled back", first
    assert "shared_buffers" in first["way_back"]  # pinned at the value it ran with
    failed = [g for g in first["gates_after"] if not g["ok"]]
    assert failed[0]["gate"] == "accepts connections", first
    assert "accepting" in first["rollback"], first
    assert _result(done, db1.name)["result"] == "ROLLED BACK"
    # The server runs again as it did before: archiving off, its old shared_buffers.
    assert _shown(lab, db1) == ["off", "128MB"]
    second = _result(done, db2.name)
    assert second["result"] == "FAIL" and second["remediation"]["status"] == "NOT REMEDIATED"
    assert second["remediation"]["output"] == f"rollout stopped at {db1.name}: accepts connections"
    assert rollout["hosts"][db2.name]["status"] == "not reached"
    assert _shown(lab, db2)[0] == "off"  # untouched
    assert done.exit_status == 1


def test_a_standby_is_restarted_before_its_primary_and_streams_again(
    lab: Lab, hosts: list[Host], tmp_path: Path
) -> None:
    db1, standby = hosts[0], hosts[2]
    lab.walguard("lab", "scenario", "apply", standby.name, "standby-of-db1")
    # Both need a restart for archiving: the standby's archive_mode too (ALTER SYSTEM works
    # there, and its restart reconnects it to db1).
    for h in (standby, db1):
        lab.walguard("lab", "scenario", "apply", h.name, "archive-mode-off")
    done = _restart(tmp_path, [db1.name, standby.name], "--remediate=apply")
    rollout = done.doc["rollout"]
    assert [s["hosts"] for s in rollout["stages"]] == [[standby.name], [db1.name]], rollout
    assert rollout["hosts"][standby.name]["role"] == "standby"
    assert rollout["hosts"][db1.name]["role"] == "primary"
    for h in (standby, db1):
        assert rollout["hosts"][h.name]["status"] == "restarted", rollout["hosts"][h.name]
        assert _result(done, h.name)["result"] == "REMEDIATED", done.stdout
    streaming = {g["gate"]: g for g in rollout["hosts"][db1.name]["gates_after"]}
    assert streaming["standbys streaming again"]["said"] == "streaming 1 of 1"
