"""The terminal summary at scale: identical host lines and identical findings are one line each,
what differs keeps a line of its own, and a small run reads as it always did."""

from __future__ import annotations

from types import MappingProxyType

from walguard.audit.run import AuditRun
from walguard.controls import REGISTRY, load_all
from walguard.inventory.load import Target
from walguard.report import terminal
from walguard.results import ERROR, FAIL, PASS, Result

ARC4 = "`test -f /pg_archive/%f || cp` reports success when /pg_archive/%f already exists"


def target(name: str) -> Target:
    return Target(name, f"10.0.0.{len(name)}", 22, "walguard", None, True, ("all",),
                  MappingProxyType({}))  # fmt: skip


def make_run(hosts: list[str], controls: list[str]) -> AuditRun:
    load_all()
    run = AuditRun([target(h) for h in hosts], None, "medium")
    run.expect({(h, c): REGISTRY[c] for h in hosts for c in controls}, len(hosts) * len(controls))
    return run


def result(host: str, control: str, verdict: str = PASS, message: str = "") -> Result:
    meta = REGISTRY[control]
    return Result(host, control, meta.title, meta.severity, verdict, message, "")


def record(run: AuditRun, res: Result, *, reachable: bool = True, error: str | None = None) -> None:
    # A host that could not be reached made no round trip.
    trips = 1 if reachable else 0
    run.record(res, {"address": "x", "reachable": reachable, "error": error, "round_trips": trips})


def estate(n: int) -> tuple[AuditRun, list[Result]]:
    """n hosts failing WG-ARC-004 alike, one of them unreachable, one failing WG-DIR-004 too."""
    hosts = [f"db{i:04d}" for i in range(1, n + 1)]
    controls = ["WG-ARC-001", "WG-ARC-004", "WG-DIR-004"]
    run = make_run(hosts, controls)
    for host in hosts:
        for control in controls:
            if host == "db0007":
                why = f"{host}: ssh: connect to host {host}: Connection timed out"
                record(run, result(host, control, ERROR, why), reachable=False, error=why)
            elif control == "WG-ARC-004":
                record(run, result(host, control, FAIL, ARC4))
            elif host == "db0003" and control == "WG-DIR-004":
                record(run, result(host, control, FAIL, "/pg_archive is mode 0777"))
            else:
                record(run, result(host, control))
    return run, run.complete("not judged")


def test_a_thousand_hosts_read_in_a_few_lines() -> None:
    run, results = estate(1000)
    out = terminal.lines(run, results, run.gate("not judged"))
    assert len(out) <= 10, "\n".join(out)
    assert out[0] == "3000 of 3000 controls selected"
    assert out[1] == (
        "998 hosts (db0001, db0002, db0004, …): reachable, 1 round trip; 2 PASS, 1 FAIL"
    )
    assert out[2] == "db0003: reachable, 1 round trip; 1 PASS, 2 FAIL"
    # The unreachable host: its line names its own reason, its name said once.
    assert out[3].startswith("db0007: UNREACHABLE (ssh: connect to host db0007: ")
    # Every control of the unreachable host is one line; the shared finding one line.
    findings = out[4:-1]
    assert f"FAIL  WG-ARC-004 (low) on 999 hosts (db0001, db0002, db0003, …): {ARC4}" in findings
    assert "FAIL  db0003 WG-DIR-004 (high): /pg_archive is mode 0777" in findings
    unreachable = [ln for ln in findings if ln.startswith("ERROR")]
    assert unreachable == [
        "ERROR WG-ARC-001, WG-ARC-004, WG-DIR-004 on db0007: "
        "ssh: connect to host db0007: Connection timed out"
    ]
    assert out[-1] == "gate (--fail-on medium): exit status 1"


def test_hosts_failing_alike_for_their_own_reasons_group_without_their_names() -> None:
    run = make_run(["db1", "db2", "db3"], ["WG-ARC-001"])
    for host in ("db1", "db2"):
        why = f"{host}: ssh: Connection refused"
        record(run, result(host, "WG-ARC-001", ERROR, why), reachable=False, error=why)
    record(run, result("db3", "WG-ARC-001"))
    out = terminal.lines(run, run.complete("x"), 6)
    unreachable = "UNREACHABLE (ssh: Connection refused), 0 round trips; 1 ERROR"
    assert f"2 hosts (db1, db2): {unreachable}" in out
    assert "ERROR WG-ARC-001 (critical) on 2 hosts (db1, db2): ssh: Connection refused" in out
    assert "db3: reachable, 1 round trip; 1 PASS" in out


def test_a_small_run_reads_as_before() -> None:
    """Each host its own line and each finding its own line, when no two are the same."""
    run = make_run(["db1", "db2"], ["WG-ARC-004", "WG-DIR-004"])
    record(run, result("db1", "WG-ARC-004", FAIL, ARC4))
    record(run, result("db1", "WG-DIR-004"))
    record(run, result("db2", "WG-ARC-004", FAIL, "archive_command is empty"))
    record(run, result("db2", "WG-DIR-004", FAIL, "/pg_archive is mode 0777"))
    out = terminal.lines(run, run.complete("x"), 1)
    assert out == [
        "4 of 4 controls selected",
        "db1: reachable, 1 round trip; 1 PASS, 1 FAIL",
        "db2: reachable, 1 round trip; 2 FAIL",
        "FAIL  db2 WG-DIR-004 (high): /pg_archive is mode 0777",
        f"FAIL  db1 WG-ARC-004 (low): {ARC4}",
        "FAIL  db2 WG-ARC-004 (low): archive_command is empty",
        "gate (--fail-on medium): exit status 1",
    ]


def test_hosts_alike_are_one_line_even_in_a_small_run() -> None:
    run = make_run(["db1", "db2", "db3"], ["WG-ARC-004"])
    for host in ("db1", "db2", "db3"):
        record(run, result(host, "WG-ARC-004", FAIL, ARC4))
    out = terminal.lines(run, run.complete("x"), 5)
    assert out[1:3] == [
        "3 hosts (db1, db2, db3): reachable, 1 round trip; 1 FAIL",
        f"FAIL  WG-ARC-004 (low) on 3 hosts (db1, db2, db3): {ARC4}",
    ]


def test_remediation_lines_follow_their_finding() -> None:
    run = make_run(["db1", "db2", "db3"], ["WG-DIR-004"])
    rem = {"script": "WG-DIR-004.sh", "mode": "plan", "status": "PLANNED",
           "output": "would chmod 0750 /pg_archive"}  # fmt: skip
    for host in ("db1", "db2", "db3"):
        res = result(host, "WG-DIR-004", FAIL, "/pg_archive is mode 0777")
        record(run, Result(**{**res.as_dict(), "remediation": rem}))
    out = terminal.lines(run, run.complete("x"), 1)
    i = out.index("FAIL  WG-DIR-004 (high) on 3 hosts (db1, db2, db3): /pg_archive is mode 0777")
    planned = "remediation WG-DIR-004.sh (plan): PLANNED: would chmod 0750 /pg_archive"
    assert out[i + 1] == f"      {planned}"


def test_a_name_inside_another_word_is_not_taken_out() -> None:
    assert terminal.without_host("db1: cannot reach db1", "db1") == "cannot reach <host>"
    assert terminal.without_host("UNREACHABLE (db1: ssh: x)", "db1") == "UNREACHABLE (ssh: x)"
    assert terminal.without_host("db10 is down", "db1") == "db10 is down"
    assert terminal.without_host("db1.example.org answered", "db1") == "db1.example.org answered"
