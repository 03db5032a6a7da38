"""The fan-out on the real lab: the same verdicts as pytest-xdist's lazy collection on a broken
host, a host whose sshd hangs holding up no other host, and `walguard merge` of two shards
(two inventories) equal to the single run, signed and verified, with a page that renders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import browser, pki
from tests.lab.break_cases import BASELINE_FAIL
from tests.lab.support import Audit, Lab, audit
from walguard.lab import settings
from walguard.lab.hosts import Host
from walguard.report import results_json
from walguard.signing import manifest

pytestmark = pytest.mark.lab


def verdicts(result: Audit) -> dict[tuple[str, str], tuple[str, str]]:
    """Each pair's result, with its message where it is not PASS (a PASS message can carry live
    values: the newest archived segment, the clock's offset)."""
    return {(r["host"], r["control"]): (r["result"], r["message"] if r["result"] != "PASS" else "")
            for h in result.doc["hosts"].values() for r in h["controls"]}  # fmt: skip


@pytest.fixture
def db3(lab: Lab) -> Iterator[Host]:
    host = next(h for h in lab.hosts if h.name == "db3")
    yield host
    lab.reset_applied(host)


def test_fan_out_and_xdist_judge_a_broken_host_alike(lab: Lab, db3: Host, tmp_path: Path) -> None:
    lab.walguard("lab", "scenario", "apply", db3.name, "archive-timeout-off")
    fanned = audit(tmp_path, "--forks", "3")
    lazy = audit(tmp_path, "-n", "2")  # each xdist worker collects its hosts one at a time
    assert fanned.by_result("db3", "FAIL") == BASELINE_FAIL | {"WG-ARC-005"}, fanned.stdout
    assert verdicts(fanned) == verdicts(lazy)
    assert fanned.exit_status == lazy.exit_status == 1
    assert {h["fact_collections"][0] for h in fanned.doc["hosts"].values()} == {"main"}
    assert {h["fact_collections"][0] for h in lazy.doc["hosts"].values()} <= {"gw0", "gw1"}


def sshd_listener(host: Host) -> int:
    """PID (on this machine) of the host's listening sshd."""
    leader = host.leader_pid()
    assert leader is not None, f"{host.name} is not running"
    todo = [leader]
    while todo:
        pid = todo.pop()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if cmdline.startswith(b"sshd:") and b"[listener]" in cmdline:
            return pid
        todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    raise AssertionError(f"{host.name}: no listening sshd")


def test_a_hung_sshd_holds_up_no_other_host(lab: Lab, db3: Host, tmp_path: Path) -> None:
    """db3's sshd stopped: its connections are accepted by the kernel and never answered, until
    walguard_connect_timeout_s and the retries end them; db1 and db2 are audited meanwhile.
    (db3's timeout is short here and it has one retry, so the test does not wait for long.)"""
    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    doc["all"]["children"]["lab"]["hosts"]["db3"].update(
        {"walguard_connect_timeout_s": 3, "walguard_ssh_retries": 1}
    )
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(doc))
    listener = sshd_listener(db3)
    os.kill(listener, signal.SIGSTOP)
    try:
        result = audit(tmp_path, inventory=inventory)
    finally:
        os.kill(listener, signal.SIGCONT)
    hosts = result.doc["hosts"]
    hung = hosts["db3"]
    assert hung["reachable"] is False and "timed out" in hung["error"], result.stdout
    assert result.by_result("db3", "ERROR") == set(result.doc["controls"])
    for name in ("db1", "db2"):
        other = hosts[name]
        assert other["reachable"] is True
        assert result.by_result(name, "FAIL") == BASELINE_FAIL
        # Judged while db3 was still pending: collected after it began, before it ended.
        assert hung["collection"]["started"] < other["collection"]["finished"]
        assert other["collection"]["finished"] < hung["collection"]["finished"]
    assert result.exit_status == 6  # db3's ERROR, nothing failed at the gate
    assert "db3: UNREACHABLE" in result.stdout
    # sshd answers again: the host is as it was.
    assert lab.ssh(db3, "true").returncode == 0


def shard_inventory(tmp_path: Path, name: str, keep: set[str]) -> Path:
    """The lab's inventory with only these database hosts (the probe hosts stay)."""
    doc: dict[str, Any] = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    lab_group = doc["all"]["children"]["lab"]
    lab_group["hosts"] = {h: v for h, v in lab_group["hosts"].items() if h in keep}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_merged_shards_equal_the_single_run(lab: Lab, tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path)
    issued = pki.issue(tmp_path, ca, "walguard shard signer")
    sign = ["--sign-key", str(issued.key_path), "--sign-cert", str(issued.cert_path)]
    single = audit(tmp_path, *sign)
    first = audit(tmp_path, *sign, inventory=shard_inventory(tmp_path, "a", {"db1", "db2"}),
                  root=tmp_path / "shard-a")  # fmt: skip
    second = audit(tmp_path, *sign, inventory=shard_inventory(tmp_path, "b", {"db3"}),
                   root=tmp_path / "shard-b")  # fmt: skip
    assert sorted(first.doc["hosts"]) == ["db1", "db2"] and list(second.doc["hosts"]) == ["db3"]
    dirs = [next((tmp_path / s).iterdir()) for s in ("shard-a", "shard-b")]
    out = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "merge", *map(str, dirs), "--out", str(out),
         "--ca", str(ca.cert_path), *sign],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    merged = results_json.read(out)
    assert done.returncode == merged["exit_status"] == single.exit_status, done.stderr
    as_audit = Audit(done.returncode, merged, done.stdout, done.stderr)
    assert verdicts(as_audit) == verdicts(single)
    assert sorted(merged["hosts"]) == sorted(single.doc["hosts"])
    assert (merged["gate"], merged["selected"], merged["total"]) == (
        single.doc["gate"],
        single.doc["selected"],
        single.doc["total"],
    )
    assert merged["run"]["policy_sha256"] == single.doc["run"]["policy_sha256"]
    assert [(s["hosts"], s["verified"]) for s in merged["run"]["shards"]] == [(2, True), (1, True)]
    verified = lab.walguard("verify", str(out), "--ca", str(ca.cert_path), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    listed = manifest.parse((out / manifest.MANIFEST).read_bytes())
    assert [s["id"] for s in listed.metadata["shards"]] == [d.name for d in dirs]
    # The page renders, and shows every host.
    dom = browser.dump_dom(out / "report.html")
    text = browser.main_view_text(dom)
    assert all(name in text for name in ("db1", "db2", "db3"))
    browser.screenshot(out / "report.html", tmp_path / "merged.png")
