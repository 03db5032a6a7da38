"""The one judge and the complete gate: verdicts from facts, never from assert statements; every
(host, control) pair the run meant to judge has a result, and a missing one is never green."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from walguard.audit.run import AuditRun, item_name, pair_of_nodeid
from walguard.controls import REGISTRY, Control, control, fail, load_all
from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir
from walguard.facts.host import HostFacts
from walguard.inventory.load import Target
from walguard.judge import PROVIDERS, judge, unknown_parameters
from walguard.part import Part
from walguard.results import Result

REPO = Path(__file__).resolve().parents[2]
TARGET = Target("db1", "10.0.0.1", 22, "walguard", None, True, ("all",), MappingProxyType({}))


def host_facts(archive: ArchiveDir | None = None, *, reachable: bool = True) -> HostFacts:
    return HostFacts(
        "db1",
        "10.0.0.1",
        reachable,
        None if reachable else "db1: ssh: Connection refused",
        Part(archive) if archive else Part(error="db1: no archive facts"),
        Part(error="db1: postgresql: connection refused"),
        Part("active"),
        2,
    )


OPEN_DIR = ArchiveDir("/pg_archive", True, "postgres", "postgres", 0o777, "directory")


def test_verdicts_from_the_judge() -> None:
    load_all()
    from walguard.controls import FUNCTIONS

    mode = FUNCTIONS["WG-DIR-004"]
    assert judge(mode, host_facts(OPEN_DIR), TARGET).result == "FAIL"
    assert "group or others can write" in judge(mode, host_facts(OPEN_DIR), TARGET).message
    closed = ArchiveDir("/pg_archive", True, "postgres", "postgres", 0o750, "directory")
    assert judge(mode, host_facts(closed), TARGET).result == "PASS"
    # A fact that could not be had is ERROR with its reason, never PASS.
    missing = judge(FUNCTIONS["WG-ARC-001"], host_facts(closed), TARGET)
    assert (missing.result, missing.message) == ("ERROR", "db1: postgresql: connection refused")
    gone = judge(mode, host_facts(OPEN_DIR, reachable=False), TARGET)
    assert (gone.result, gone.message) == ("ERROR", "db1: ssh: Connection refused")


def test_a_bug_in_a_control_is_its_error() -> None:
    def broken(archive: ArchiveDir) -> None:
        raise KeyError("oops")

    verdict = judge(broken, host_facts(OPEN_DIR), TARGET)
    assert verdict.result == "ERROR"
    assert verdict.message.startswith("internal error in the control: KeyError")


def test_every_control_reads_only_what_providers_give() -> None:
    load_all()
    from walguard.controls import FUNCTIONS

    assert {
        cid: unknown_parameters(fn) for cid, fn in FUNCTIONS.items() if unknown_parameters(fn)
    } == {}
    assert set(PROVIDERS) >= {"facts", "policy", "pg", "archive", "selinux", "probe", "target"}


def test_a_control_may_not_use_assert() -> None:
    with pytest.raises(ValueError, match="uses assert"):

        @control("WG-TST-901", "uses assert", severity="low", rationale="test")
        def uses_assert(archive: ArchiveDir) -> None:
            assert archive.exists, "missing"

    assert "WG-TST-901" not in REGISTRY

    @control("WG-TST-902", "uses fail", severity="low", rationale="test")
    def uses_fail(archive: ArchiveDir) -> None:
        if not archive.exists:
            fail("missing")

    REGISTRY.pop("WG-TST-902")


def test_verdicts_hold_with_python_optimisation() -> None:
    """python -O drops assert statements: the controls' verdicts must not change."""
    code = textwrap.dedent(
        """
        import sys
        from types import MappingProxyType
        from walguard.controls import FUNCTIONS, load_all
        from walguard.facts.host import ArchiveDir, HostFacts, Part
        from walguard.inventory.load import Target
        from walguard.judge import judge
        assert False, "asserts are on"  # dropped under -O: this line must not stop the script
        load_all()
        d = ArchiveDir("/pg_archive", True, "postgres", "postgres", 0o777, "directory")
        facts = HostFacts("db1", "x", True, None, Part(d), Part(error="no pg"), Part("active"), 1)
        t = Target("db1", "x", 22, None, None, False, (), MappingProxyType({}))
        print(judge(FUNCTIONS["WG-DIR-004"], facts, t).result)
        """
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FAIL"


def test_node_ids_name_their_pair() -> None:
    name = item_name("WG-ARC-001", "db1.example.internal")
    assert pair_of_nodeid(f"checks/test_archive_settings.py::{name}") == (
        "db1.example.internal",
        "WG-ARC-001",
    )
    assert pair_of_nodeid("tests/unit/test_x.py::test_y") is None
    assert pair_of_nodeid("checks/a.py::WG-ACT-001[fe80::1]") == ("fe80::1", "WG-ACT-001")


def _meta(cid: str, severity: str) -> Control:
    return Control(cid, f"title {cid}", severity, "why", (), None, False)


def _result(host: str, meta: Control, result: str) -> Result:
    return Result(host, meta.id, meta.title, meta.severity, result, "", "")


def test_missing_pairs_are_errors_and_never_green() -> None:
    high, low = _meta("WG-ARC-001", "high"), _meta("WG-ARC-004", "low")
    run = AuditRun([TARGET], None, "medium")
    run.expect({("db1", high.id): high, ("db1", low.id): low}, total=2)
    run.record(_result("db1", high, "PASS"))
    assert run.missing() == [("db1", "WG-ARC-004")]
    complete = run.complete("not judged: the run stopped early (stopping after 1 failures)")
    assert [(r.control, r.result) for r in complete] == [
        ("WG-ARC-001", "PASS"),
        ("WG-ARC-004", "ERROR"),
    ]
    assert complete[1].message.endswith("(stopping after 1 failures)")
    # The missing control is below the gate, yet the run is not green while it is missing.
    assert run.gate("stopped") == 6
    run.record(_result("db1", low, "FAIL"))
    assert run.gate("stopped") == 0


def test_a_crashed_worker_names_its_host() -> None:
    high = _meta("WG-ARC-001", "high")
    run = AuditRun([TARGET], None, "medium")
    run.expect({("db1", high.id): high}, total=1)
    run.note_crash("db1", "not judged: worker 'gw1' crashed while running ...")
    (res,) = run.complete("no result")
    assert (res.result, res.message) == (
        "ERROR",
        "not judged: worker 'gw1' crashed while running ...",
    )
    assert run.gate("no result") == 6


def test_nothing_at_or_above_the_gate_is_exit_5() -> None:
    low = _meta("WG-ARC-004", "low")
    run = AuditRun([TARGET], None, "medium")
    run.expect({("db1", low.id): low}, total=21)
    run.record(_result("db1", low, "PASS"))
    assert run.gate("-") == 5
    run.fail_on = "low"
    assert run.gate("-") == 0


def test_collections_are_counted_per_process() -> None:
    high = _meta("WG-ARC-001", "high")
    run = AuditRun([TARGET], None, "medium")
    info = {
        "address": "x",
        "reachable": True,
        "round_trips": 2,
        "collected_by": "gw0",
        "collections": 1,
    }
    run.record(_result("db1", high, "PASS"), info)
    run.record(_result("db1", high, "PASS"), info)
    assert run.hosts["db1"].as_dict()["collections"] == 1
    run.record(_result("db1", high, "PASS"), {**info, "collected_by": "gw1"})
    assert json.loads(json.dumps(run.hosts["db1"].as_dict()))["collections"] == 2


def test_fact_unavailable_is_an_exception_type_the_judge_knows() -> None:
    assert issubclass(FactUnavailable, Exception)


def test_xdist_group_suffix_is_ignored() -> None:
    assert pair_of_nodeid("checks/a.py::WG-DIR-004[db2]@db2") == ("db2", "WG-DIR-004")


def test_a_results_dict_is_dataclasses_asdict() -> None:
    from dataclasses import asdict

    plain = Result("db1", "WG-ARC-001", "t", "high", "FAIL", "m", "n")
    full = Result("db1", "WG-ARC-001", "t", "high", "FAIL", "m", "n",
                  remediation={"status": "REMEDIATED", "lines": ["a"]},
                  waiver={"ticket": "T-1"})  # fmt: skip
    for r in (plain, full):
        assert r.as_dict() == asdict(r)
    copied = full.as_dict()
    assert copied["remediation"] is not full.remediation
    copied["remediation"]["lines"].append("b")
    assert full.remediation == {"status": "REMEDIATED", "lines": ["a"]}


def test_the_complete_results_follow_every_change_of_the_run() -> None:
    high = _meta("WG-ARC-001", "high")
    run = AuditRun([TARGET], None, "medium")
    run.expect({("db1", high.id): high}, total=1)
    assert [r.message for r in run.complete("first")] == ["first"]
    assert [r.message for r in run.complete("second")] == ["second"]  # another reason
    run.note_crash("db1", "crashed")
    assert [r.message for r in run.complete("second")] == ["crashed"]
    run.record(_result("db1", high, "FAIL"))
    assert [r.result for r in run.complete("second")] == ["FAIL"]
    run.replace_result(("db1", high.id), result="REMEDIATED")
    got = run.complete("second")
    assert [r.result for r in got] == ["REMEDIATED"]
    got.clear()  # a caller's list is its own
    assert len(run.complete("second")) == 1
