"""Break and fix, for every control: apply a scenario on one lab host, audit the whole lab, see
exactly that control (and what it necessarily implies) fail on that host and nowhere else; reset;
see it pass again. Plus the audit's behaviour as a CI gate: exit codes, selection, xdist, errors.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.break_cases import BASELINE_FAIL, CASES, Case, batch_id, batches
from tests.lab.scenario_effects import EFFECTS
from tests.lab.support import (
    HOST_COUNT,
    Audit,
    Lab,
    assert_pristine,
    audit,
    inventory_with,
    observe,
    on_each,
    wait_for_archiver_failure,
)
from walguard.controls import load_all
from walguard.lab import settings
from walguard.lab.hosts import Host
from walguard.lab.scenarios import all_scenarios

pytestmark = pytest.mark.lab


@pytest.fixture
def broken_host(lab: Lab) -> Any:
    host = lab.hosts[2]
    yield host
    # Reset only what a test left broken (a reset reboots the host: seconds each time).
    lab.reset_applied()


@pytest.fixture(scope="module")
def pristine(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    """One plain audit of the pristine lab, for the tests that only read it."""
    return audit(tmp_path_factory.mktemp("pristine"))


def test_pristine_lab_passes_the_gate(lab: Lab, pristine: Audit) -> None:
    result = pristine
    assert result.exit_status == 0, result.stdout + result.stderr
    for host in lab.hosts:
        info = result.doc["hosts"][host.name]
        assert info["reachable"] is True
        assert info["round_trips"] == 1
        assert result.by_result(host.name, "FAIL") == BASELINE_FAIL
        assert result.by_result(host.name, "ERROR") == set()
        assert len(info["controls"]) >= 15
    assert "test -f … || cp" not in result.message("db1", "WG-ARC-004")
    assert "safer: if [ -f /pg_archive/%f ]; then cmp -s %p" in result.message("db1", "WG-ARC-004")


BATCHES = batches(CASES, len(settings.host_names(HOST_COUNT)))


@pytest.fixture
def broken_hosts(beside: Lab) -> Iterator[list[Host]]:
    yield beside.hosts
    # A batch that failed halfway leaves scenarios behind: reset those hosts (only those).
    beside.reset_applied()


def _on_each(placed: list[tuple[Case, Host]], check: Callable[[Case, Host], None]) -> list[str]:
    """Run `check` for every (case, host) side by side (each on its own host)."""
    cases = {case.scenario: case for case, _ in placed}
    return on_each(
        [(case.scenario, host) for case, host in placed],
        lambda name, host: check(cases[name], host),
    )


def _verdicts(a: Audit, host: Host) -> str:
    failed = sorted(a.by_result(host.name, "FAIL"))
    errors = {c: a.message(host.name, c) for c in sorted(a.by_result(host.name, "ERROR"))}
    return f"FAIL {failed}, ERROR {errors}"


def _broken_as_expected(broken: Audit, case: Case, host: Host) -> list[str]:
    """Exactly the case's controls FAIL on its host (with its allowances), and nothing errs."""
    failed = broken.by_result(host.name, "FAIL") - BASELINE_FAIL
    problems = []
    if missing := case.fails - failed:
        problems.append(f"did not FAIL {sorted(missing)}")
    if extra := failed - case.fails - case.may_fail:
        notes = "; ".join(f"{c}: {broken.message(host.name, c)}" for c in sorted(extra))
        problems.append(f"also FAILED {sorted(extra)} ({notes})")
    if broken.by_result(host.name, "ERROR"):
        problems.append("has ERRORs")
    if not problems:
        return []
    what = f"{host.name} broken by {case.scenario}: {', '.join(problems)}"
    return [f"{what}; {_verdicts(broken, host)}"]


@pytest.mark.parametrize("batch", BATCHES, ids=[batch_id(b) for b in BATCHES])
def test_break_and_fix(
    beside: Lab, broken_hosts: list[Host], tmp_path: Path, batch: tuple[Case, ...]
) -> None:
    """Each case of the batch breaks its own host of those beside the lab (the first db4, the
    next db5, ...: these run beside the lab's tests); one audit of those hosts must see exactly
    each case's controls FAIL on its host (break_cases says why such cases cannot mask each
    other) and every other host as pristine as before. Then the
    broken hosts are reset together and the next audit sees them pass. Also each scenario's own
    observable effect (test_scenarios.EFFECTS), so that one apply and one reset serve both."""
    lab = beside
    placed = list(zip(batch, broken_hosts, strict=False))
    untouched = broken_hosts[len(placed) :]
    for case, host in placed:
        lab.walguard("lab", "scenario", "apply", host.name, case.scenario)

    def effect(case: Case, host: Host) -> None:
        if case.scenario in EFFECTS:
            EFFECTS[case.scenario](lab, host, observe(lab, host))
        if case.wait_for_failure:
            wait_for_archiver_failure(lab, host.name)

    effects_missing = _on_each(placed, effect)
    assert not effects_missing, "\n".join(effects_missing)
    broken = audit(tmp_path, inventory=lab.inventory)
    problems = [p for case, host in placed for p in _broken_as_expected(broken, case, host)]
    problems += [
        f"{host.name} (no scenario) is not pristine: {_verdicts(broken, host)}"
        for host in untouched
        if broken.by_result(host.name, "FAIL") != BASELINE_FAIL
        or broken.by_result(host.name, "ERROR")
    ]
    assert not problems, "\n".join(problems) + "\n" + broken.stdout
    assert broken.exit_status == 1, broken.stdout

    lab.walguard("lab", "scenario", "reset", *(host.name for _, host in placed))
    not_pristine = _on_each(placed, lambda case, host: assert_pristine(observe(lab, host), host))
    assert not not_pristine, "after reset:\n" + "\n".join(not_pristine)
    fixed = audit(tmp_path, inventory=lab.inventory)
    still = [
        f"{host.name} after resetting {case.scenario}: {_verdicts(fixed, host)}"
        for case, host in placed
        if fixed.by_result(host.name, "FAIL") != BASELINE_FAIL
        or fixed.by_result(host.name, "ERROR")
    ]
    assert not still, "\n".join(still) + "\n" + fixed.stdout
    assert fixed.exit_status == 0, fixed.stdout


def test_every_control_has_a_break_and_fix_case() -> None:
    # WG-ARC-004: pristine fails, the safer command passes; WG-ACT-006: the active probe tests;
    # WG-SEL-*: break and fix on the SELinux guest (test_selinux_audit.py); WG-SYS-004: over two
    # runs (test_validation_matrix_lab.py); WG-RST-002: its RPO waited out
    # (test_restorability_lab.py); WG-RST-003/004: the opt-in drill (test_restore_drill_lab.py).
    selinux = {f"WG-SEL-00{i}" for i in range(1, 7)}
    run = [case for batch in BATCHES for case in batch]  # what test_break_and_fix runs
    elsewhere = {"WG-ARC-004", "WG-ACT-006", "WG-SYS-004", "WG-RST-002", "WG-RST-003", "WG-RST-004"}
    covered = set().union(*(c.fails for c in run)) | elsewhere
    covered |= selinux
    assert set(load_all()) == covered


def test_what_a_scenario_may_fail_is_a_control() -> None:
    controls = set(load_all())
    for scenario in all_scenarios().values():
        assert set(scenario.may_fail) <= controls, (scenario.path, scenario.may_fail)


def test_batches_run_every_case_once_and_keep_cases_apart() -> None:
    run = [case.scenario for batch in BATCHES for case in batch]
    assert sorted(run) == sorted(c.scenario for c in CASES)
    assert len(run) == len(set(run)), run
    hosts = len(settings.host_names(HOST_COUNT))
    for batch in BATCHES:
        assert 1 <= len(batch) <= hosts, batch_id(batch)
        for i, case in enumerate(batch):
            for other in batch[i + 1 :]:
                shared = (case.fails | case.may_fail) & (other.fails | other.may_fail)
                assert not shared, f"{case.scenario} and {other.scenario} share {shared}"


def test_safer_archive_command_passes_the_identical_file_control(
    lab: Lab, broken_host: Any, tmp_path: Path
) -> None:
    safer = "if [ -f /pg_archive/%f ]; then cmp -s %p /pg_archive/%f; else cp %p /pg_archive/%f; fi"
    sql = f"ALTER SYSTEM SET archive_command = '{safer}'"
    lab.ssh(
        broken_host, f"sudo -n -u postgres psql -XAtq -c \"{sql}\" -c 'SELECT pg_reload_conf()'"
    )
    result = audit(tmp_path, "--fail-on", "low")
    assert "WG-ARC-004" not in result.by_result(broken_host.name, "FAIL")
    assert "WG-ARC-003" not in result.by_result(broken_host.name, "FAIL")


def test_postgresql_down_makes_its_controls_error_never_pass(
    lab: Lab, broken_host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", broken_host.name, "postgresql-stopped")
    result = audit(tmp_path)
    errors = result.by_result(broken_host.name, "ERROR")
    assert {"WG-ARC-001", "WG-ARC-002", "WG-ARC-003", "WG-ACT-001", "WG-ACT-004"} <= errors
    assert "WG-SYS-001" in result.by_result(broken_host.name, "FAIL")
    # What can pass without a server: the directory and the host's own platform facts.
    assert result.by_result(broken_host.name, "PASS") <= {
        "WG-DIR-001",
        "WG-DIR-002",
        "WG-DIR-003",
        "WG-DIR-004",
        "WG-DIR-005",
        "WG-SYS-003",
        "WG-SYS-004",
        "WG-NET-002",
        "WG-NET-003",
        "WG-IDN-001",
        "WG-IDN-002",
    }
    msg = result.message(broken_host.name, "WG-ARC-001")
    assert msg.startswith(f"{broken_host.name}: postgresql:"), msg
    assert "Traceback" not in msg
    # The stopped unit is a FAIL (WG-SYS-001): a failure outranks the errors in the gate.
    assert result.exit_status == 1


def test_unreachable_host_errors_with_one_line_and_others_carry_on(
    lab: Lab, tmp_path: Path
) -> None:
    # db9's address answers, but nothing listens on port 2: "connection refused".
    inv = inventory_with(
        tmp_path, {"db9": {"ansible_host": lab.hosts[0].address, "ansible_port": 2}}
    )
    result = audit(tmp_path, inventory=inv)
    assert result.exit_status == 6
    db9 = result.doc["hosts"]["db9"]
    assert db9["reachable"] is False
    assert {c["result"] for c in db9["controls"]} == {"ERROR"}
    assert "connection refused" in db9["controls"][0]["message"].lower()
    # ssh's reason, said once: the host's name stands beside it wherever it is shown.
    assert db9["controls"][0]["message"].startswith("ssh: connect to host ")
    for host in lab.hosts:
        assert result.by_result(host.name, "FAIL") == BASELINE_FAIL


def test_unknown_host_key_is_an_error_not_a_pass(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = inventory_with(tmp_path, {})
    text = inv.read_text().replace(str(settings.STATE_DIR / "known_hosts"), str(empty))
    inv.write_text(text)
    result = audit(tmp_path, inventory=inv)
    assert result.exit_status == 6
    msg = result.message("db1", "WG-ARC-001")
    # ssh's telling line, and in the evidence every line it wrote.
    assert "host key is known for" in msg and "requested strict checking" in msg
    said = result.doc["hosts"]["db1"]["ssh_attempts"][0]["ssh_said"]
    assert "Host key verification failed." in said


def test_fail_on_low_turns_the_low_finding_into_a_failure(lab: Lab, tmp_path: Path) -> None:
    assert audit(tmp_path, "--fail-on", "low").exit_status == 1
    assert audit(tmp_path, "--fail-on", "critical").exit_status == 0


def test_selection_by_control_id_and_severity(lab: Lab, tmp_path: Path) -> None:
    one = audit(tmp_path, "-k", "WG-ARC-001")
    for host in lab.hosts:
        assert [c["control"] for c in one.doc["hosts"][host.name]["controls"]] == ["WG-ARC-001"]
    crit = audit(tmp_path, "-m", "severity_critical")
    severities = {c["severity"] for h in crit.doc["hosts"].values() for c in h["controls"]}
    assert severities == {"critical"}


def test_nothing_selected_is_not_green(lab: Lab, tmp_path: Path) -> None:
    result = audit(tmp_path, "-k", "WG-NOPE-999")
    assert result.exit_status == 5


def test_xdist_collects_facts_once_per_host(lab: Lab, tmp_path: Path) -> None:
    result = audit(tmp_path, "-n", "2")
    assert result.exit_status == 0, result.stdout
    collectors = set()
    for host in lab.hosts:
        info = result.doc["hosts"][host.name]
        assert info["round_trips"] == 1
        assert len(info["fact_collections"]) == 1, info  # one worker collected this host
        collectors.update(info["fact_collections"])
        assert result.by_result(host.name, "FAIL") == BASELINE_FAIL
    assert collectors <= {"gw0", "gw1"} and len(collectors) == 2  # the work was shared


def test_report_directory_holds_html_json_and_junit(lab: Lab, tmp_path: Path) -> None:
    root = tmp_path / "r"
    subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--report-root", str(root)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    (run,) = root.iterdir()
    assert {p.name for p in run.iterdir()} >= {"report.html", "results.json", "junit.xml"}
    page = (run / "report.html").read_text()
    assert "WG-ARC-001" in page and "db1" in page
    for host in lab.hosts:
        evidence = run / "evidence" / host.name
        assert f"{host.name}\n" in (evidence / "collector.txt").read_text()
        assert '"archive_mode"' in (evidence / "postgresql.json").read_text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("all: [", "bad.yml:1:"),
        ("all:\n  hosts: {}\n", "no hosts"),
        ("all:\n  hosts:\n    db1:\n  vars:\n    walguard_rpo_minuts: 5\n", "walguard_rpo_minutes"),
        ("all:\n  hosts:\n    db1:\n    db1:\n", "db1"),
        ("all:\n  hosts:\n    db1:\n      secret: !vault |\n        abc\n", "ault"),
    ],
    ids=["yaml-error", "empty", "typo", "duplicate", "vault"],
)
def test_bad_inventory_is_a_usage_error_before_any_host_is_touched(
    tmp_path: Path, content: str, expected: str
) -> None:
    inv = tmp_path / "bad.yml"
    inv.write_text(content)
    result = audit(tmp_path, inventory=inv)
    assert result.exit_status == 4
    assert "bad.yml" in result.stderr and expected in result.stderr
    assert result.doc == {}


def test_active_probe_is_opt_in_and_proves_archiving(
    lab: Lab, pristine: Audit, tmp_path: Path
) -> None:
    assert all(
        c["control"] != "WG-ACT-006" for h in pristine.doc["hosts"].values() for c in h["controls"]
    )
    probed = audit(tmp_path, "--active-probe", "-k", "WG-ACT-006")
    assert probed.exit_status == 0, probed.stdout
    for host in lab.hosts:
        assert probed.by_result(host.name, "PASS") == {"WG-ACT-006"}


def test_active_probe_fails_when_the_segment_never_arrives(
    lab: Lab, broken_host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", broken_host.name, "archive-command-permission-denied")
    result = audit(tmp_path, "--active-probe", "--probe-wait", "5", "-k", "WG-ACT-006")
    assert result.exit_status == 1
    assert result.by_result(broken_host.name, "FAIL") == {"WG-ACT-006"}
    assert "was not archived within 5 s" in result.message(broken_host.name, "WG-ACT-006")
    for other in lab.hosts[:2]:
        assert other.name in result.doc["hosts"]
        assert result.by_result(other.name, "PASS") == {"WG-ACT-006"}


def test_a_hung_command_makes_only_its_controls_error(
    lab: Lab, broken_host: Any, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", broken_host.name, "df-hangs")
    inv = inventory_with(tmp_path, {})
    import yaml

    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][broken_host.name]["walguard_command_timeout_s"] = 6
    inv.write_text(yaml.safe_dump(doc))
    started = time.monotonic()
    result = audit(tmp_path, inventory=inv)
    assert time.monotonic() - started < 60
    errors = result.by_result(broken_host.name, "ERROR")
    assert "WG-DIR-005" in errors
    assert "timed out" in result.message(broken_host.name, "WG-DIR-005")
    # PostgreSQL's facts do not depend on df: those controls still have their answers.
    assert {"WG-ARC-001", "WG-ACT-001", "WG-ACT-002"} <= result.by_result(broken_host.name, "PASS")
    assert result.exit_status == 6
    for other in lab.hosts[:2]:
        assert result.by_result(other.name, "ERROR") == set()


def test_audit_through_a_proxyjump_bastion(lab: Lab, tmp_path: Path) -> None:
    """db2 refuses SSH from this machine; the audit reaches it through db1 as a bastion named in
    the operator's own ssh configuration, as a bank's jump-host setup would have it (the
    inventory may only say `-J bastion`: options that read other files are refused)."""
    db1, db2 = lab.hosts[0], lab.hosts[1]
    bastion = "walguard-lab-test-bastion"
    cfg = Path("/etc/ssh/ssh_config.d") / f"{bastion}.conf"
    cfg.write_text(
        f"Host {bastion}\n  HostName {db1.address}\n  User walguard\n"
        f"  UserKnownHostsFile {settings.STATE_DIR / 'known_hosts'}\n"
        f"  IdentityFile {settings.STATE_DIR / 'id_ed25519'}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
    )
    inv = inventory_with(tmp_path, {})
    import yaml

    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][db2.name]["ansible_ssh_common_args"] = f"-J {bastion}"
    inv.write_text(yaml.safe_dump(doc))
    try:
        # New connections only: the session that adds the rule must survive it.
        lab.ssh(
            db2,
            f"sudo -n nft insert rule inet walguard input ct state new ip saddr "
            f"{settings.BRIDGE_ADDR} tcp dport 22 reject with tcp reset",
        )
        direct = audit(tmp_path, "-k", db2.name)
        assert direct.doc["hosts"][db2.name]["reachable"] is False
        via = audit(tmp_path, "-k", db2.name, inventory=inv)
        info = via.doc["hosts"][db2.name]
        assert info["reachable"] is True and info["round_trips"] == 1
        assert via.by_result(db2.name, "FAIL") == BASELINE_FAIL
    finally:
        cfg.unlink(missing_ok=True)
        lab.walguard("lab", "scenario", "reset", db2.name)


def test_selinux_disabled_fails_unless_the_policy_opts_out(lab: Lab, tmp_path: Path) -> None:
    import yaml

    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"]["db1"]["walguard_selinux_required"] = True
    inv.write_text(yaml.safe_dump(doc))
    result = audit(tmp_path, "-k", "WG-SEL", inventory=inv)
    sel = {f"WG-SEL-00{i}" for i in range(1, 7)}
    assert result.by_result("db1", "FAIL") == sel
    assert all(result.message("db1", c) == "SELinux is disabled" for c in sel)
    assert result.by_result("db2", "NOT APPLICABLE") == sel
    assert "walguard_selinux_required: false" in result.message("db2", "WG-SEL-001")
    assert result.exit_status == 1


def test_socket_forward_reads_as_the_login_user_and_cannot_be_postgres(lab: Lab) -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from walguard.facts.transport import Connection
    from walguard.inventory.load import load_inventory

    target = load_inventory(settings.INVENTORY_PATH)[0]
    conn = Connection(target)
    try:
        conn.open()
        sock_dir = conn.forward_unix_socket("/var/run/postgresql/.s.PGSQL.5432", ".s.PGSQL.5432")
        as_user = make_conninfo(host=sock_dir, port=5432, dbname="postgres", user="walguard")
        with psycopg.connect(as_user, options="-c default_transaction_read_only=on") as pg:
            row = pg.execute("SELECT current_user, current_setting('transaction_read_only')")
            assert row.fetchone() == ("walguard", "on")
        as_postgres = make_conninfo(host=sock_dir, port=5432, dbname="postgres", user="postgres")
        with pytest.raises(psycopg.OperationalError, match="Peer authentication failed"):
            psycopg.connect(as_postgres).close()
    finally:
        conn.close()
