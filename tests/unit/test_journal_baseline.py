"""WG-SYS-004's baseline is the previous run drift compares with: the newest run of the same
inventory and --limit that verifies against the CA. A planted or changed directory is not a
baseline, a file swapped after the run verified is an ERROR, and without a verified previous run
this boot's errors are judged against the noise list alone. Real signed run directories, real
collector output, the one judge."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests import pki
from tests.unit import test_run_history as runs
from tests.unit.test_platform_facts import pristine
from tests.unit.test_validation_matrix import ZONES, verdict
from walguard.audit.items import FactsCache
from walguard.facts.host import HostFacts
from walguard.facts.platform import parse_platform
from walguard.history import drift
from walguard.history import previous as history
from walguard.history.journal_baseline import ALONE, Baselines
from walguard.history.run_inputs import PREVIOUS_RUN_KEY, RunHistory
from walguard.part import Part
from walguard.policy.model import Policy
from walguard.results import PASS, Result

NAMES = runs.NAMES
KNOWN = "2026-11-25T01:00:00+0000 db1 kernel: ata2: softreset failed (device not ready)\n"
# This boot: the known line again (another time) and two new errors.
NOW = (
    "2026-11-26T01:00:00+0000 db1 kernel: ata2: softreset failed (device not ready)",
    "2026-11-26T01:00:01+0000 db1 kernel: blk_update_request: I/O error, dev sdb, sector 8",
    "2026-11-26T01:00:02+0000 db1 postgres[4242]: FATAL: could not write to file pg_wal",
)
V = {("db1", "WG-SYS-004"): PASS}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.Issued, pki.Issued]:
    return runs.make_keys(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]) -> tuple[pki.Issued, pki.Issued]:
    """The CA and signer, and the oldest run: signed, db1's evidence holding KNOWN."""
    runs.write_run(tmp_path, NAMES[0], V, journal={"db1": KNOWN}, sign=keys[1])
    return keys


def holding_now(root: Path, name: str, sign: pki.Issued | None = None, **kw: Any) -> Path:
    """A run whose db1 evidence already holds this boot's errors: as a baseline, none is new."""
    return runs.write_run(root, name, V, journal={"db1": "\n".join(NOW)}, sign=sign, **kw)


def facts() -> HostFacts:
    """db1's real collector output, with this boot's journal errors being NOW."""
    platform = dataclasses.replace(parse_platform(pristine()), journal=Part(NOW))
    return HostFacts(
        "db1",
        "10.231.0.11",
        True,
        None,
        Part(error="n/a"),
        Part(error="n/a"),
        Part("active"),
        1,
        platform=platform,
    )


def judged(baselines: Baselines, noise: tuple[str, ...] = ()) -> Any:
    """WG-SYS-004 on db1, its baseline set the way the run's fact cache sets it."""
    cache = FactsCache(None, active_probe=False, probe_wait_s=1)
    cache.journal_baselines = baselines
    found = cache._with_history(facts())
    return verdict("WG-SYS-004", found.platform, policy=Policy(zones=ZONES, journal_noise=noise))


def look_back(root: Path, ca: pki.Issued | None, inventory: str = runs.INVENTORY) -> RunHistory:
    """The controller's one look back, as the plugin makes it."""
    run_history = RunHistory(verify_ca=ca.cert_path if ca else None)
    current = root / NAMES[6]
    current.mkdir()
    run_history.look_back(current, inventory)
    return run_history


def test_a_planted_directory_newer_than_the_signed_run_is_no_baseline(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, _ = signed
    # Planted: evidence that already "has" this boot's errors, so that none would be new; once
    # with a results.json claiming this inventory (named, passed over), once without (ignored).
    planted = holding_now(tmp_path, NAMES[1])
    bare = tmp_path / NAMES[2] / "evidence" / "db1"
    bare.mkdir(parents=True)
    (bare / "journal_errors.txt").write_text("\n".join(NOW))
    run_history = look_back(tmp_path, ca)
    v = judged(run_history.journal)
    assert v.result == "FAIL", v.message
    assert v.message.startswith(f"2 new journal error(s) (compared with run {NAMES[0]})")
    assert "I/O error, dev sdb" in v.message and "could not write to file pg_wal" in v.message
    assert run_history.previous is not None
    assert [(s.path, s.why) for s in run_history.previous.skipped] == [(planted, "not signed")]


def test_a_signed_run_that_does_not_verify_is_named_and_the_older_verified_one_used(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = signed
    tampered = runs.write_run(tmp_path, NAMES[1], V, journal={"db1": KNOWN}, sign=signed_by)
    (tampered / "evidence" / "db1" / "journal_errors.txt").write_text("\n".join(NOW))
    run_history = look_back(tmp_path, ca)
    v = judged(run_history.journal)
    assert v.result == "FAIL" and f"compared with run {NAMES[0]}" in v.message, v.message
    run_history.compare(
        [Result("db1", "WG-SYS-004", "t", "medium", "FAIL", v.message, "")], tmp_path / NAMES[6]
    )
    assert run_history.drift is not None
    [skipped] = run_history.drift["skipped"]
    assert skipped["run"] == NAMES[1]
    assert "changed: evidence/db1/journal_errors.txt" in skipped["why"]
    lines = run_history.lines({"drift": run_history.drift})
    assert any(line.startswith(f"  passed over run {NAMES[1]}: does not verify") for line in lines)


def test_a_run_of_another_inventory_or_limit_is_no_baseline(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = signed
    holding_now(tmp_path, NAMES[1], signed_by, limit="db1")
    holding_now(tmp_path, NAMES[2], signed_by, inventory="/etc/walguard/test.yml")
    run_history = look_back(tmp_path, ca)
    v = judged(run_history.journal)
    assert v.result == "FAIL" and f"compared with run {NAMES[0]}" in v.message, v.message
    assert run_history.previous is not None and run_history.previous.skipped == ()
    # The gate's limited run has its own previous run: the limited one.
    limited = RunHistory(verify_ca=ca.cert_path)
    limited.look_back(tmp_path / NAMES[6], history.selection_key(runs.INVENTORY, "db1"))
    assert judged(limited.journal).result == "PASS"


def test_wg_sys_004_and_drift_name_the_same_previous_run(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = signed
    holding_now(tmp_path, NAMES[1], signed_by)
    run_history = look_back(tmp_path, ca)
    v = judged(run_history.journal)
    assert v.result == "PASS", v.message
    assert v.message.endswith(f"(compared with run {NAMES[1]})")
    run_history.compare(
        [Result("db1", "WG-SYS-004", "t", "medium", v.result, v.message, "")], tmp_path / NAMES[6]
    )
    assert run_history.drift is not None and run_history.drift["previous"]["run"] == NAMES[1]
    assert drift.lines(run_history.drift)[0].startswith(f"drift since run {NAMES[1]} ")


def test_without_a_ca_there_is_no_previous_run_and_the_noise_list_alone_judges(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    holding_now(tmp_path, NAMES[0], keys[1])
    run_history = look_back(tmp_path, None)
    v = judged(run_history.journal)
    assert v.result == "FAIL", v.message
    alone = "no verified earlier run of this inventory: judged against the noise list alone"
    assert v.message.startswith(f"3 new journal error(s) ({alone} (no CA to verify")
    quiet = judged(run_history.journal, noise=("softreset failed", "I/O error", "pg_wal"))
    assert quiet.result == "PASS" and "judged against the noise list alone" in quiet.message
    run_history.compare([], tmp_path / NAMES[6])
    assert run_history.drift is not None and run_history.drift["previous"] is None
    assert "no CA to verify earlier runs with" in run_history.drift["note"]


def test_a_host_the_previous_run_has_no_evidence_for_is_judged_on_the_noise_list(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    runs.write_run(tmp_path, NAMES[0], V, journal={"db2": "\n".join(NOW)}, sign=signed_by)
    v = judged(look_back(tmp_path, ca).journal)
    assert v.result == "FAIL"
    assert f"run {NAMES[0]} has no journal evidence for db1: {ALONE}" in v.message


def test_a_baseline_swapped_after_its_run_verified_is_an_error(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    run_history = look_back(tmp_path, signed[0])
    (tmp_path / NAMES[0] / "evidence" / "db1" / "journal_errors.txt").write_text("\n".join(NOW))
    v = judged(run_history.journal)
    assert v.result == "ERROR"
    assert f"the baseline of run {NAMES[0]} cannot be trusted" in v.message
    assert "changed since its run was verified" in v.message


class WorkerConfig:
    """What an xdist worker's pytest config offers RunHistory: its options and workerinput."""

    def __init__(self, workerinput: dict[str, Any]) -> None:
        self.workerinput = workerinput

    def getoption(self, name: str) -> Any:
        return None


def test_xdist_workers_judge_against_the_run_the_controller_found(
    tmp_path: Path, signed: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, _ = signed
    controller = look_back(tmp_path, ca)
    # workerinput travels to the worker as plain data.
    sent = json.loads(json.dumps(controller.worker_input()))
    worker = RunHistory.from_config(WorkerConfig(sent), set(), controller=False)  # type: ignore[arg-type]
    on_worker, on_controller = judged(worker.journal), judged(controller.journal)
    assert on_worker == on_controller and on_worker.result == "FAIL"
    assert f"compared with run {NAMES[0]}" in on_worker.message
    # A worker the controller told nothing judges nothing: ERROR, never a "first run".
    lost = RunHistory.from_config(WorkerConfig({}), set(), controller=False)  # type: ignore[arg-type]
    v = judged(lost.journal)
    assert v.result == "ERROR" and "sent no previous run" in v.message
    assert PREVIOUS_RUN_KEY in sent
