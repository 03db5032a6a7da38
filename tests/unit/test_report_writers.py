"""results.json against its schema and report.html as an auditor reads it, from a synthetic run
put through the real writers (known failures, whatever the lab says today)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import browser
from walguard.remediate.apply import Outcome
from walguard.remediate.authority import RestartRecord
from walguard.report import html, results_json, synthetic, writer
from walguard.results import REMEDIATION_REFUSED, ROLLED_BACK

MESSAGE = "archive directory /pg_archive is mode 0777 on purpose for this test"
RESTART_MESSAGE = "archive_mode is off on purpose for this test"
WINDOW = "Sat 01:00-05:00 Europe/Berlin"
OWNER = "Jane Doe <jane.doe@bank.example>"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(results_json.SCHEMA_PATH.read_text())
    return schema


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(_schema(), format_checker=None).validate(doc)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    run_dir = synthetic.new_run_dir(tmp_path_factory.mktemp("runs"))
    run, _, info = synthetic.make_run(run_dir, 120, 30)
    complete = synthetic.with_result(
        run.complete("x"), "db0003", "WG-DIR-004", result="FAIL", message=MESSAGE
    )
    # A restart refused outside its window, recorded as remediation records it.
    restart = RestartRecord("alice", (WINDOW,), OWNER)
    refused = Outcome("WG-ARC-001", "WG-ARC-001.sh", "apply", REMEDIATION_REFUSED,
                      f"outside the change window ({WINDOW}; next opens at "
                      "2026-12-12T01:00:00+01:00)", "CHG-4711", restart=restart)  # fmt: skip
    complete = synthetic.with_result(
        complete, "db0004", "WG-ARC-001", result=REMEDIATION_REFUSED, message=RESTART_MESSAGE,
        remediation=refused.as_dict(),
    )  # fmt: skip
    # A staged restart that rolled its canary back and stopped before the next host.
    run.rollout = _rollout()
    complete = synthetic.with_result(
        complete, "db0005", "WG-ARC-001", result=ROLLED_BACK, message=RESTART_MESSAGE,
        remediation=Outcome("WG-ARC-001", "WG-ARC-001.sh", "apply", ROLLED_BACK,
                            ROLLBACK_WHY, "CHG-4711", restart=restart).as_dict(),
    )  # fmt: skip
    failed = writer.write_run(run, complete, info, code=1, gate=1, signing=None)
    assert failed is None
    return run_dir, results_json.read(run_dir)


ROLLBACK_WHY = (
    "rolled back after the gate accepts connections: not accepting connections within 20 s"
)


def _rollout() -> dict[str, Any]:
    from walguard.remediate.gates import Gate
    from walguard.remediate.rollout import HostRollout, Rollout
    from walguard.remediate.rollout_plan import Stage

    # The canary restarted (0.42 s down), the next host would not come back.
    first = HostRollout("db0007", 1, status="restarted", downtime_s=0.42)
    first.gates_after = [Gate("accepts connections", True, "accepting after 0.3 s")]
    canary = HostRollout("db0005", 2, status="rolled back", downtime_s=None)
    canary.gates_before = [Gate("no backup running", True, "pg_basebackup streams: 0")]
    canary.gates_after = [Gate("accepts connections", False, "not accepting within 20 s")]
    canary.rollback = "restored postgresql.auto.conf with 2 setting(s) pinned accepting after 1.2 s"
    canary.activates = ("shared_buffers",)
    later = HostRollout("db0006", 3, status="not reached",
                        reason="rollout stopped at db0005: accepts connections")  # fmt: skip
    stages = [Stage(1, ("db0007",), True), Stage(2, ("db0005",), False),
              Stage(3, ("db0006",), False)]  # fmt: skip
    rollout = Rollout(stages, {"db0007": first, "db0005": canary, "db0006": later}, 1)
    rollout.stopped_at = "db0005: accepts connections"
    return rollout.as_dict()


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_written_results_validate_against_the_schema(written: tuple[Path, dict[str, Any]]) -> None:
    validate(written[1])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema_version",), 2),
        (("hosts", "db0001", "controls", 0, "result"), "GREEN"),
        (("run", "started"), "yesterday"),
        (("hosts", "db0001", "zones"), {"zone-a": {"expect": "maybe", "outcome": "x", "ok": True}}),
    ],
)
def test_schema_rejects_what_it_does_not_document(
    written: tuple[Path, dict[str, Any]], path: tuple[Any, ...], value: Any
) -> None:
    doc = json.loads(json.dumps(written[1]))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_zones_validate_and_render_as_a_matrix(written: tuple[Path, dict[str, Any]]) -> None:
    doc = json.loads(json.dumps(written[1]))
    doc["hosts"]["db0001"]["zones"] = {
        "zone-a": {"expect": "reach", "outcome": "connected", "ok": True},
        "zone-b": {"expect": "refuse", "outcome": "connected", "ok": False},
    }
    validate(doc)
    page = html.render(doc)
    assert 'id="zone-matrix"' in page
    assert "<b>NOT OK</b>: expect refuse, connected" in page
    assert 'id="zone-matrix"' not in html.render(written[1])


def test_results_json_records_the_run(written: tuple[Path, dict[str, Any]]) -> None:
    doc = written[1]
    run = doc["run"]
    assert run["started"] <= run["finished"]
    assert run["walguard"]["version"] and run["operator"] and run["command"]
    assert len(run["policy_sha256"]) == 64 and len(run["inventory"]["sha256"]) == 64
    results = [r for h in doc["hosts"].values() for r in h["controls"]]
    assert doc["summary"]["by_result"] == dict(Counter(r["result"] for r in results))
    assert doc["summary"]["unreachable"] == [f"db{i:04d}" for i in (99,)]
    failure = next(r for r in results if r["host"] == "db0003" and r["control"] == "WG-DIR-004")
    (ref,) = failure["evidence"]
    assert ref["file"] == "evidence/db0003/collector.txt" and ref["section"] == "archive_stat"
    lines = (written[0] / ref["file"]).read_text().split("\n")
    first, last = ref["lines"]
    assert "\n".join(lines[first - 1 : last]) == ref["excerpt"]  # the lines, where it says
    passing = next(r for r in results if r["result"] == "PASS" and r["evidence"])
    assert all(e["excerpt"] is None for e in passing["evidence"])


def test_page_is_self_contained(written: tuple[Path, dict[str, Any]]) -> None:
    page = (written[0] / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page


def test_auditor_sees_summary_failure_and_no_traceback(
    written: tuple[Path, dict[str, Any]],
) -> None:
    run_dir, doc = written
    dom = browser.dump_dom(run_dir / "report.html")
    text = browser.main_view_text(dom)
    totals = doc["summary"]["by_result"]
    for result, count in totals.items():
        assert f'data-result="{result}">{count}<' in dom
    assert MESSAGE in text and "db0003" in text
    assert "Gate failed" in text
    for noise in ("Traceback", "AssertionError", "self.", "def test_", ".py::"):
        assert noise not in text, noise
    assert "checks/test_synthetic.py::" in dom  # ... it is there, in the technical section
    shot = run_dir / "screenshot.png"
    browser.screenshot(run_dir / "report.html", shot)
    assert shot.stat().st_size > 10_000


def test_a_refused_restart_shows_its_authority(written: tuple[Path, dict[str, Any]]) -> None:
    run_dir, doc = written
    (result,) = [r for r in doc["hosts"]["db0004"]["controls"] if r["control"] == "WG-ARC-001"]
    assert result["result"] == REMEDIATION_REFUSED
    record = {k: result["remediation"][k] for k in ("change_ref", "operator", "change_window",
                                                     "rollback_owner")}  # fmt: skip
    assert record == {"change_ref": "CHG-4711", "operator": "alice", "change_window": [WINDOW],
                      "rollback_owner": OWNER}  # fmt: skip
    dom = browser.dump_dom(run_dir / "report.html")
    text = browser.main_view_text(dom)
    for shown in (
        "Remediation WG-ARC-001.sh (apply, change CHG-4711): REMEDIATION REFUSED",
        f"Before {RESTART_MESSAGE}",
        "Change ticket CHG-4711",
        "Operator alice",
        f"Change window {WINDOW}",
        f"Rollback owner {OWNER}",
        # walguard's reason, not a script's output: the script never ran.
        f"Why not run outside the change window ({WINDOW}; next opens at 2026-12-12T01:00:00",
    ):
        assert shown in text, shown
    assert "&lt;jane.doe@bank.example&gt;" in dom  # the owner's address is text, not a tag
    # Only a disruptive script's outcome carries the record, and only it shows one.
    remediated = [r for h in doc["hosts"].values() for r in h["controls"] if r["remediation"]]
    operated = [r["host"] for r in remediated if "operator" in r["remediation"]]
    assert operated == ["db0004", "db0005"]
    assert len(remediated) > 1
    assert html.render(doc).count("<th>Rollback owner</th>") == 2


def test_the_schema_documents_the_restart_record(written: tuple[Path, dict[str, Any]]) -> None:
    doc = json.loads(json.dumps(written[1]))
    (result,) = [r for r in doc["hosts"]["db0004"]["controls"] if r["control"] == "WG-ARC-001"]
    validate(doc)
    result["remediation"]["change_window"] = WINDOW  # a string, not the list of windows
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_matrix_table_and_text_show_the_same_cells(written: tuple[Path, dict[str, Any]]) -> None:
    from walguard.report import html

    doc = written[1]
    ids = sorted({r["control"] for h in doc["hosts"].values() for r in h["controls"]})
    rows = html._matrix_rows(doc, ids)
    text = str(html._matrix_text(doc, ids))
    judged = [n for n, h in doc["hosts"].items() if h["controls"]]
    assert len(rows) == len(judged) and text.count('href="#h-') == len(judged)
    target = html.anchor("r", "db0003", "WG-DIR-004")
    assert any(f'href="#{target}"' in row for row in rows)
    assert f'href="#{target}"' in text
    assert sum(r.count("<td") for r in rows) == len(judged) * len(ids)


def test_results_json_reads_back_equal_with_a_line_per_result(tmp_path: Path) -> None:
    result = {"host": "db1", "control": "WG-ARC-001", "message": 'ünïcode "quoted"\nnewline'}
    doc: dict[str, Any] = {
        "schema_version": 1,
        "run": {"id": "r", "command": ["walguard", "audit"], "inventory": {"files": []}},
        "missing": [{"host": "db2", "control": "WG-ARC-001"}],
        "hosts": {
            "db1": {"reachable": True, "controls": [result, {**result, "control": "WG-ARC-002"}]},
            "db2": {"reachable": False, "controls": []},
        },
        "drift": None,
    }
    text = results_json.write(doc, tmp_path).read_text(encoding="utf-8")
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert sum('"control": "WG-ARC-00' in line and '"host": "db1"' in line for line in lines) == 2
    assert '    {"host": "db2", "control": "WG-ARC-001"}' not in lines  # top level: one space
    assert '  {"host": "db2", "control": "WG-ARC-001"}' in lines
    assert "ünïcode" in text  # not escaped
    assert json.loads(results_json.write({"hosts": {}}, tmp_path).read_text()) == {"hosts": {}}


def test_a_staged_restart_shows_its_stages_gates_and_where_it_stopped(
    written: tuple[Path, dict[str, Any]],
) -> None:
    run_dir, doc = written
    assert doc["rollout"]["stopped_at"] == "db0005: accepts connections"
    (result,) = [r for r in doc["hosts"]["db0005"]["controls"] if r["control"] == "WG-ARC-001"]
    assert result["result"] == ROLLED_BACK and doc["exit_status"] == 1
    text = browser.main_view_text(browser.dump_dom(run_dir / "report.html"))
    for shown in (
        "Staged restart",
        "The rollout stopped at db0005: accepts connections.",
        # The measured downtime in the restarted host's row, none for the rolled-back one.
        "1 (canary) db0007 unknown restarted \u2013 0.4 s ok: accepts connections",
        "2 db0005 unknown rolled back",
        "FAILED: accepts connections not accepting within 20 s",
        "also pending a restart: shared_buffers",
        "3 db0006 unknown not reached rollout stopped at db0005: accepts connections",
        f"Rollback {ROLLBACK_WHY}",  # walguard's account, not a script's output
    ):
        assert shown in text, shown


def test_the_schema_holds_a_rollout_to_its_words(written: tuple[Path, dict[str, Any]]) -> None:
    doc = json.loads(json.dumps(written[1]))
    validate(doc)
    doc["rollout"]["hosts"]["db0006"]["status"] = "probably fine"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
