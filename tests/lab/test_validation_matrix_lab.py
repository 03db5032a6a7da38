"""The validation matrix on the lab, beyond one break and fix per control: the journal baseline
over consecutive runs, the host x zone matrix from the zones' probe hosts, and what happens when a
zone cannot be judged (never a PASS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.support import Lab, audit, signing_args
from walguard.lab import settings

pytestmark = pytest.mark.lab

ALONE = "no verified earlier run of this inventory: judged against the noise list alone"


def test_journal_errors_are_judged_against_the_previous_verified_run(
    lab: Lab, tmp_path: Path
) -> None:
    root = tmp_path / "reports"
    signing = signing_args(tmp_path)
    runs = []

    def run(*extra: str) -> Any:
        result = audit(tmp_path, "-k", "WG-SYS-004", *extra, root=root)
        runs.append(result)
        return result

    # No previous run: a pristine host's errors at boot are all known noise.
    first = run(*signing)
    for host in lab.hosts:
        assert first.by_result(host.name, "PASS") == {"WG-SYS-004"}, first.stdout
        assert ALONE in first.message(host.name, "WG-SYS-004")
    first_id = first.doc["run"]["id"]
    db3 = lab.hosts[2]
    lab.walguard("lab", "scenario", "apply", db3.name, "journal-error")
    try:
        second = run(*signing)
        assert second.by_result(db3.name, "FAIL") == {"WG-SYS-004"}, second.stdout
        message = second.message(db3.name, "WG-SYS-004")
        assert f"1 new journal error(s) (compared with run {first_id})" in message
        assert "simulated I/O error on /dev/sdb" in message
        for other in lab.hosts[:2]:
            assert second.by_result(other.name, "PASS") == {"WG-SYS-004"}
            assert f"compared with run {first_id}" in second.message(other.name, "WG-SYS-004")
        # WG-SYS-004 and drift name the same previous run.
        assert second.doc["drift"]["previous"]["run"] == first_id
        # The error is in the previous verified run's evidence now: the same error is not new.
        third = run(*signing)
        assert third.by_result(db3.name, "PASS") == {"WG-SYS-004"}, third.stdout
        # Without a CA nothing earlier is evidence: the error is judged on the noise list.
        unverified = run()
        assert unverified.by_result(db3.name, "FAIL") == {"WG-SYS-004"}, unverified.stdout
        assert ALONE in unverified.message(db3.name, "WG-SYS-004")
    finally:
        lab.walguard("lab", "scenario", "reset", db3.name)
    assert len(list(root.iterdir())) == 4


def test_the_zone_matrix_is_recorded_per_host(lab: Lab, tmp_path: Path) -> None:
    result = audit(tmp_path, "-k", "WG-NET-004")
    assert result.exit_status == 0, result.stdout
    for host in lab.hosts:
        zones = result.doc["hosts"][host.name]["zones"]
        assert zones["zone-a"]["expect"] == "reach"
        assert zones["zone-a"]["outcome"] == "answered over verified TLS"
        assert zones["zone-b"]["expect"] == "refuse"
        assert zones["zone-b"]["outcome"] == "refused"
        assert zones["zone-a"]["ok"] and zones["zone-b"]["ok"]
        assert zones["zone-a"]["probe"] == "probe-a" and zones["zone-b"]["probe"] == "probe-b"
        # The probe hosts are vantage points, not audited hosts.
    assert set(result.doc["hosts"]) == {h.name for h in lab.hosts}
    run_dir = next(p for p in (tmp_path).glob("reports-*/*") if p.is_dir())
    for probe in settings.probe_names():
        assert "BEGIN db1" in (run_dir / "evidence" / probe / "zone_probe.txt").read_text()


def _inventory(tmp_path: Path, change: Any) -> Path:
    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    change(doc)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_one_zone_is_a_fail_not_a_pass(lab: Lab, tmp_path: Path) -> None:
    def one_zone(doc: dict[str, Any]) -> None:
        doc["all"]["vars"]["walguard_zones"] = {"zone-a": {"expect_postgres": True}}

    result = audit(tmp_path, "-k", "WG-NET-004", inventory=_inventory(tmp_path, one_zone))
    for host in lab.hosts:
        assert result.by_result(host.name, "FAIL") == {"WG-NET-004"}
        assert "1 zone(s) in the policy" in result.message(host.name, "WG-NET-004")


def test_an_unreachable_probe_host_is_an_error_not_a_pass(lab: Lab, tmp_path: Path) -> None:
    def probe_b_gone(doc: dict[str, Any]) -> None:
        doc["all"]["children"]["probes"]["hosts"]["probe-b"]["ansible_host"] = "10.231.2.99"
        doc["all"]["vars"]["walguard_connect_timeout_s"] = 2
        doc["all"]["vars"]["walguard_ssh_retries"] = 0

    result = audit(tmp_path, "-k", "WG-NET-004", inventory=_inventory(tmp_path, probe_b_gone))
    for host in lab.hosts:
        assert result.by_result(host.name, "ERROR") == {"WG-NET-004"}, result.stdout
        assert "probe host probe-b of zone-b" in result.message(host.name, "WG-NET-004")
    assert result.exit_status == 6


def test_a_server_certificate_without_a_ca_in_the_policy_cannot_pass(
    lab: Lab, tmp_path: Path
) -> None:
    def no_ca(doc: dict[str, Any]) -> None:
        del doc["all"]["vars"]["walguard_tls_ca_file"]

    result = audit(tmp_path, "-k", "WG-IDN-003", inventory=_inventory(tmp_path, no_ca))
    for host in lab.hosts:
        assert result.by_result(host.name, "ERROR") == {"WG-IDN-003"}
        assert "policy names no CA" in result.message(host.name, "WG-IDN-003")


@pytest.mark.parametrize(
    ("scenario", "control", "outcome", "fragment"),
    [
        ("config-changed-not-reloaded", "WG-SYS-005", "REMEDIATED", "reload the configuration"),
        ("unit-changed-no-reload", "WG-SYS-006", "REMEDIATED", "systemctl daemon-reload"),
        ("firewall-flushed", "WG-NET-003", "REMEDIATED", "load the persisted ruleset"),
        # An upgraded binary needs a restart: the script refuses, and says so.
        ("server-binary-replaced", "WG-SYS-006", "REMEDIATION REFUSED", "only a restart"),
        # A reload cannot activate a setting that waits for a restart.
        ("archive-mode-off-pending-restart", "WG-SYS-005", "REMEDIATION REFUSED",
         "wait for a restart"),
    ],
)  # fmt: skip
def test_matrix_remediation_fixes_or_refuses(
    lab: Lab, tmp_path: Path, scenario: str, control: str, outcome: str, fragment: str
) -> None:
    db3 = lab.hosts[2]
    lab.walguard("lab", "scenario", "apply", db3.name, scenario)
    try:
        result = audit(tmp_path, "-k", f"db3 and {control}", "--remediate=apply")
        [row] = [c for c in result.doc["hosts"]["db3"]["controls"] if c["control"] == control]
        assert row["result"] == outcome, result.stdout
        assert fragment in row["remediation"]["output"], row["remediation"]
        if outcome == "REMEDIATED":
            again = audit(tmp_path, "-k", f"db3 and {control}")
            assert again.by_result("db3", "PASS") == {control}, again.stdout
    finally:
        lab.walguard("lab", "scenario", "reset", db3.name)
