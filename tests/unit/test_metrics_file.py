"""`walguard audit --metrics-file`: the run's results in Prometheus' text format, for
node_exporter's textfile collector. Made from a synthetic run's results document (known
failures, an unreachable host) and read back with prometheus_client's own parser; replaced
atomically (a reader sees the old file or the new one, and no temporary file stays); hostile
host names round-trip; a path node_exporter would ignore, or that cannot be written, is a
one-line usage error before anything is written; and a real audit of a host nobody answers for
writes it (no lab needed)."""

from __future__ import annotations

import copy
import fnmatch
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests import unanswered
from walguard.report import metrics, synthetic, writer
from walguard.report.results_json import RESULTS

REPO = Path(__file__).resolve().parents[2]
FAILING = ("db0003", "WG-DIR-004")  # made FAIL here, whatever the synthetic roll says
PASSING = ("db0004", "WG-DIR-004")
UNREACHABLE = "db0099"  # synthetic: every 100th host, all its controls ERROR


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run_dir = synthetic.new_run_dir(tmp_path_factory.mktemp("runs"))
    run, _, info = synthetic.make_run(run_dir, 100, 30)
    results = synthetic.with_result(run.complete("x"), *FAILING, result="FAIL", message="0777")
    results = synthetic.with_result(results, *PASSING, result="PASS", message="")
    return writer.document(run, results, info, run_dir=run_dir, code=6, gate=6, signing=None)


def parse(text: bytes) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        found[family.name] = list(family.samples)
    return found


def one(samples: list[Sample], **labels: str) -> float:
    (value,) = [s.value for s in samples if labels.items() <= s.labels.items()]
    return value


def test_the_run_parses_with_the_values_of_its_results(doc: dict[str, Any]) -> None:
    m = parse(metrics.exposition(doc, audit="walguard-prod"))
    # Every series says which file (which audit) it came from.
    assert {s.labels["audit"] for samples in m.values() for s in samples} == {"walguard-prod"}

    host, control = FAILING
    severity = doc["controls"][control]["severity"]
    (series,) = [s for s in m["walguard_control_result"]
                 if (s.labels["host"], s.labels["control"]) == FAILING]  # fmt: skip
    assert series.labels == {"audit": "walguard-prod", "host": host, "control": control,
                             "severity": severity, "result": "FAIL"}  # fmt: skip
    assert series.value == 1
    assert one(m["walguard_control_failed"], host=host, control=control) == 1
    assert one(m["walguard_control_result"], host=PASSING[0], control=control, result="PASS") == 1
    assert one(m["walguard_control_failed"], host=PASSING[0], control=control) == 0
    # An unreachable host: every control ERROR, which is not a failure of the control.
    assert one(m["walguard_control_result"], host=UNREACHABLE, control=control) == 1
    assert one(m["walguard_control_result"], host=UNREACHABLE, control=control, result="ERROR")
    assert one(m["walguard_control_failed"], host=UNREACHABLE, control=control) == 0
    assert one(m["walguard_host_reachable"], host=UNREACHABLE) == 0
    assert one(m["walguard_host_reachable"], host="db0001") == 1
    # One series per host and control in each per-control family.
    pairs = sum(len(h["controls"]) for h in doc["hosts"].values())
    assert len(m["walguard_control_result"]) == len(m["walguard_control_failed"]) == pairs == 3000

    # The run: the gate, the exit status, hosts and results counted.
    assert one(m["walguard_audit_gate_passed"]) == 0
    assert one(m["walguard_audit_exit_status"]) == 6
    assert one(m["walguard_audit_signed"]) == 0
    assert {s.labels["state"]: s.value for s in m["walguard_audit_hosts"]} == {
        "reached": 99, "unreachable": 1, "not_contacted": 0,
    }  # fmt: skip
    counted = Counter(r["result"] for h in doc["hosts"].values() for r in h["controls"])
    by_result = {s.labels["result"]: s.value for s in m["walguard_audit_results"]}
    assert set(RESULTS) <= set(by_result)  # every result, 0 when none
    assert by_result == {r: counted.get(r, 0) for r in by_result}
    assert by_result["ERROR"] == 30 and by_result["REMEDIATION FAILED"] == 0
    assert sum(by_result.values()) == pairs

    started = datetime.fromisoformat(doc["run"]["started"]).timestamp()
    finished = datetime.fromisoformat(doc["run"]["finished"]).timestamp()
    assert one(m["walguard_audit_last_run_timestamp_seconds"]) == finished
    assert one(m["walguard_audit_duration_seconds"]) == finished - started
    assert one(m["walguard_audit_info"], run=doc["run"]["id"], fail_on="medium") == 1
    # No drill in this run: its families are left out, not written empty.
    assert not any(name.startswith("walguard_restore_drill") for name in m)


def test_the_gate_the_final_exit_status_and_the_signature(doc: dict[str, Any]) -> None:
    passed = {**doc, "gate": 0, "exit_status": 0}
    m = parse(metrics.exposition(passed, audit="a"))
    assert one(m["walguard_audit_gate_passed"]) == 1
    assert one(m["walguard_audit_exit_status"]) == 0
    # The plugin passes the process's final status (7: the signature could not be made).
    m = parse(metrics.exposition(passed, audit="a", exit_status=7, signed=False))
    assert one(m["walguard_audit_gate_passed"]) == 1
    assert one(m["walguard_audit_exit_status"]) == 7
    assert one(m["walguard_audit_signed"]) == 0
    assert one(parse(metrics.exposition(doc, audit="a", signed=True))["walguard_audit_signed"]) == 1


def test_the_restore_drills_restore_time_and_objective(doc: dict[str, Any]) -> None:
    drilled = copy.deepcopy(doc)
    drilled["hosts"]["db0001"]["restore_drill"] = {"restored": True, "restore_s": 12.345}
    drilled["hosts"]["db0002"]["restore_drill"] = {"restored": False, "restore_s": None}
    drilled["hosts"]["db0003"]["restore_drill"] = {"error": "cannot drill: no base backup"}
    drilled["hosts"]["db0002"]["policy"]["rto_minutes"] = 0.5
    m = parse(metrics.exposition(drilled, audit="a"))
    assert {s.labels["host"]: s.value for s in m["walguard_restore_drill_restored"]} == {
        "db0001": 1, "db0002": 0, "db0003": 0,
    }  # fmt: skip
    # Measured only where it restored.
    assert {s.labels["host"]: s.value for s in m["walguard_restore_drill_rto_seconds"]} == {
        "db0001": 12.345
    }
    objective = {
        s.labels["host"]: s.value for s in m["walguard_restore_drill_rto_objective_seconds"]
    }
    assert objective == {"db0001": 3600, "db0002": 30, "db0003": 3600}


def test_help_and_type_are_the_same_whatever_the_run(doc: dict[str, Any]) -> None:
    # node_exporter refuses a family whose HELP differs between two files of its directory.
    other = copy.deepcopy(doc)
    other["hosts"] = {"x": {**doc["hosts"]["db0001"]}}
    other["gate"] = 0

    def heads(d: dict[str, Any], audit: str) -> set[str]:
        text = metrics.exposition(d, audit=audit).decode()
        return {line for line in text.splitlines() if line.startswith("#")}

    assert heads(doc, "walguard-prod") == heads(other, "walguard-prod-drill")


HOSTILE = [
    'db"1',
    "db\\1",
    "db\\n1",  # a backslash and an n, not a newline
    "db\n1",
    'evil"} 1\nwalguard_audit_gate_passed{audit="forged"} 1\n#',
    "db\r1",
    "дб-1.bank.example",
    "{}=,",
    "",
]


def _rename_hosts(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    hosts = list(doc["hosts"].values())[: len(names)]
    return {**doc, "hosts": dict(zip(names, hosts, strict=True))}


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_host_names_round_trip(doc: dict[str, Any], name: str) -> None:
    renamed = _rename_hosts(doc, ["db0001", name])
    text = metrics.exposition(renamed, audit="walguard")
    m = parse(text)
    hosts = {s.labels["host"] for s in m["walguard_control_result"]}
    assert hosts == {"db0001", name}
    assert one(m["walguard_host_reachable"], host=name) == 1
    # Nothing was forged by a host name: one gate, this file's.
    assert [s.labels for s in m["walguard_audit_gate_passed"]] == [{"audit": "walguard"}]
    # Every sample is one line (the format's lines end at a newline only; a carriage return
    # is a label value's own character): what a newline in a name could split.
    samples = [ln for ln in text.decode().split("\n") if ln and not ln.startswith("#")]
    assert len(samples) == sum(len(s) for s in m.values())


def test_a_name_utf8_cannot_carry_is_escaped_not_an_error(doc: dict[str, Any]) -> None:
    renamed = _rename_hosts(doc, ["db\udc801"])  # a lone surrogate, as a JSON escape can give
    m = parse(metrics.exposition(renamed, audit="walguard"))
    assert {s.labels["host"] for s in m["walguard_control_result"]} == {"db\\udc801"}


# -- the file --


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)  # an audit's (walguard.report.permissions)
    try:
        yield
    finally:
        os.umask(old)


def test_the_file_is_written_readable_by_node_exporter_and_alone(
    doc: dict[str, Any], tmp_path: Path, umask_027: None
) -> None:
    path = tmp_path / "walguard-prod.prom"
    metrics.write(doc, path, exit_status=6, signed=True)
    assert os.listdir(tmp_path) == ["walguard-prod.prom"]  # no temporary file left
    # node_exporter runs as its own user: readable by others whatever the audit's umask.
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    m = parse(path.read_bytes())
    assert one(m["walguard_audit_exit_status"], audit="walguard-prod") == 6
    assert one(m["walguard_audit_signed"]) == 1
    # Written again: replaced whole.
    metrics.write({**doc, "gate": 0}, path, exit_status=0)
    assert one(parse(path.read_bytes())["walguard_audit_gate_passed"]) == 1
    assert os.listdir(tmp_path) == ["walguard-prod.prom"]


def test_the_new_file_is_complete_before_it_is_renamed_over_the_old(
    doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "walguard.prom"
    path.write_text("old\n")
    new = metrics.exposition(doc, audit="walguard", exit_status=6)
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        seen.append((str(src), str(dst)))
        assert Path(src).parent == path.parent  # same file system: rename(2) is atomic
        assert not fnmatch.fnmatch(Path(src).name, "*.prom")  # the collector skips it
        assert Path(src).read_bytes() == new  # whole before it is visible
        assert path.read_text() == "old\n"  # readers still see the old file
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    metrics.write(doc, path, exit_status=6)
    assert len(seen) == 1 and seen[0][1] == str(path)
    assert path.read_bytes() == new


def test_a_reader_never_sees_a_part_of_the_file(doc: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "walguard.prom"
    versions = [metrics.exposition(doc, audit="walguard", exit_status=s) for s in (1, 6)]
    path.write_bytes(versions[0])
    done = threading.Event()
    reads, partial = [0], []

    def reader() -> None:
        while not done.is_set():
            text = path.read_bytes()
            reads[0] += 1
            if text not in versions:
                partial.append(len(text))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            metrics.replace_atomically(path, versions[i % 2])
    finally:
        done.set()
        thread.join()
    assert reads[0] > 0 and partial == []
    assert os.listdir(tmp_path) == ["walguard.prom"]


@pytest.mark.parametrize("fails", ["fsync", "replace", "interrupt"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    path = tmp_path / "walguard.prom"
    path.write_text("old\n")

    def broken(*args: object) -> None:
        if fails == "interrupt":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace" if fails == "replace" else "fsync", broken)
    with pytest.raises(KeyboardInterrupt if fails == "interrupt" else OSError):
        metrics.write(doc, path)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["walguard.prom"]


def test_the_audit_label_is_the_files_name() -> None:
    assert metrics.audit_label(Path("/var/lib/prometheus/node-exporter/walguard-prod.prom")) == (
        "walguard-prod"
    )


# -- through `walguard audit` --


def _audit(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=clean,
    )  # fmt: skip


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        return Path("/sys")  # root writes anywhere the file system lets it: not in sysfs
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("walguard.txt", "node_exporter's textfile collector reads only files named *.prom"),
        ("walguard.prom.tmp", "reads only files named *.prom"),
        (".prom", "reads only files named *.prom"),
        ("no/such/dir/walguard.prom", "no such directory"),
        ("a-file/walguard.prom", "is not a directory"),
        (".", "a directory; name a file in it"),
        ("UNWRITABLE/walguard.prom", "cannot write in"),
    ],
)
def test_a_bad_metrics_file_is_one_usage_line_before_anything_is_written(
    tmp_path: Path, where: str, said: str
) -> None:
    (tmp_path / "a-file").write_text("")
    inventory = unanswered.inventory(tmp_path, ["db1"])
    root = tmp_path / "reports"
    target = where.replace("UNWRITABLE", str(_unwritable(tmp_path)))
    done = _audit("--inventory", str(inventory), "--report-root", str(root),
                  "--metrics-file", target, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"walguard audit: error: --metrics-file {target}: "), lines[0]
    assert said in lines[0]
    assert not root.exists()  # no host touched, no run directory made
    assert not [p for p in tmp_path.rglob("*.prom*") if p.is_file()]


def test_an_audit_of_unreachable_hosts_writes_the_file(tmp_path: Path) -> None:
    inventory = unanswered.inventory(tmp_path, ["db1", "db2"])
    root, textfiles = tmp_path / "reports", tmp_path / "node-exporter"
    textfiles.mkdir()
    path = textfiles / "walguard.prom"
    done = _audit("--inventory", str(inventory), "--report-root", str(root),
                  "--metrics-file", str(path), "-k", "WG-ARC-001")  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr  # unreachable: ERROR
    assert os.listdir(textfiles) == ["walguard.prom"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    m = parse(path.read_bytes())
    assert one(m["walguard_audit_gate_passed"]) == 0
    assert one(m["walguard_audit_exit_status"]) == 6
    assert {s.labels["state"]: s.value for s in m["walguard_audit_hosts"]} == {
        "reached": 0, "unreachable": 2, "not_contacted": 0,
    }  # fmt: skip
    assert {(s.labels["host"], s.labels["result"]) for s in m["walguard_control_result"]} == {
        ("db1", "ERROR"), ("db2", "ERROR"),
    }  # fmt: skip
    (run_dir,) = root.iterdir()
    assert one(m["walguard_audit_info"], run=run_dir.name) == 1


def test_collect_only_writes_no_metrics_file(tmp_path: Path) -> None:
    inventory = unanswered.inventory(tmp_path, ["db1"])
    path = tmp_path / "walguard.prom"
    done = _audit("--inventory", str(inventory), "--report-root", str(tmp_path / "reports"),
                  "--metrics-file", str(path), "--co")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not path.exists()


def test_the_data_loss_window_where_it_was_measured(doc: dict[str, Any]) -> None:
    measured = copy.deepcopy(doc)
    hosts = measured["hosts"]
    hosts["db0001"]["data_loss_window"] = {"waited_s": 81.5, "oldest_unarchived_commit": None}
    hosts["db0002"]["data_loss_window"] = {"waited_s": 0}
    hosts["db0003"]["data_loss_window"] = {"error": "cannot read 000000010000000000000007"}
    hosts["db0004"]["data_loss_window"] = {"standby": True}
    hosts["db0002"]["policy"]["rpo_minutes"] = 0.25
    m = parse(metrics.exposition(measured, audit="a"))
    # An unmeasured window is absent, never a 0 that would read as "nothing at risk".
    assert {s.labels["host"]: s.value for s in m["walguard_data_loss_window_seconds"]} == {
        "db0001": 81.5, "db0002": 0,
    }  # fmt: skip
    objective = {
        s.labels["host"]: s.value for s in m["walguard_data_loss_window_objective_seconds"]
    }
    assert objective == {"db0001": 900, "db0002": 15}
