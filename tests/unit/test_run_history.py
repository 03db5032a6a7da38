"""Looking back at earlier runs: the previous run of an inventory is the newest that verifies
(runs that do not are named and passed over, and without a CA there is none), drift,
`--baseline` and retention, on real signed run directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import pki
from walguard.history import drift, retention
from walguard.history import previous as history
from walguard.results import ERROR, FAIL, PASS, WAIVED, Result, exit_status
from walguard.signing import signer
from walguard.signing.sign_run import sign_run

INVENTORY = "/etc/walguard/prod.yml"


def make_keys(directory: Path) -> tuple[pki.Issued, pki.Issued]:
    """A CA and a report signer it issued."""
    ca = pki.make_ca(directory)
    return ca, pki.issue(directory, ca, "report signer")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.Issued, pki.Issued]:
    return make_keys(tmp_path_factory.mktemp("pki"))


def write_run(
    root: Path,
    name: str,
    verdicts: dict[tuple[str, str], str],
    *,
    inventory: str = INVENTORY,
    limit: str | None = None,
    failed_count: dict[str, int] | None = None,
    stats_reset: str = "2026-11-01 00:00:00+00",
    journal: dict[str, str] | None = None,
    sign: pki.Issued | None = None,
) -> Path:
    run = root / name
    run.mkdir(parents=True)
    hosts: dict[str, Any] = {}
    for (host, control), result in verdicts.items():
        hosts.setdefault(host, {"controls": []})["controls"].append(
            {"control": control, "result": result}
        )
    record = {"source": inventory, **({"limit": limit} if limit is not None else {})}
    doc = {"schema_version": 1, "run": {"id": name, "inventory": record}, "hosts": hosts}
    (run / "results.json").write_text(json.dumps(doc))
    for host, count in (failed_count or {}).items():
        (run / "evidence" / host).mkdir(parents=True, exist_ok=True)
        archiver = {"failed_count": count, "stats_reset": stats_reset,
                    "last_failed_wal": "000000010000000000000007" if count else None,
                    "last_failed_time": "2026-11-26 01:02:03+00" if count else None}  # fmt: skip
        (run / "evidence" / host / "postgresql.json").write_text(json.dumps({"archiver": archiver}))
    for host, text in (journal or {}).items():
        (run / "evidence" / host).mkdir(parents=True, exist_ok=True)
        (run / "evidence" / host / "journal_errors.txt").write_text(text)
    if sign is not None:
        sign_run(run, signer.Signer(sign.key, sign.cert), {"run": name})
    return run


def verified(run_dir: Path, ca: pki.Issued) -> history.EarlierRun:
    found = history.load_verified(run_dir, ca.cert_path)
    assert isinstance(found, history.EarlierRun), found
    return found


def results(verdicts: dict[tuple[str, str], str]) -> list[Result]:
    return [Result(h, c, "t", "high", r, f"{r} msg", "") for (h, c), r in verdicts.items()]


NAMES = [f"20261126T0{i}0000Z-00000{i}" for i in range(1, 8)]


def test_the_previous_run_is_the_newest_verified_run_of_the_same_inventory(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    write_run(tmp_path, NAMES[0], {("db1", "WG-ARC-001"): PASS}, sign=signed_by)
    write_run(tmp_path, NAMES[1], {("db1", "WG-ARC-001"): PASS}, inventory="/other.yml",
              sign=signed_by)  # fmt: skip
    write_run(tmp_path, NAMES[2], {("db1", "WG-ARC-001"): PASS})  # not signed: not evidence
    (tmp_path / NAMES[3]).mkdir()  # no results.json: not a run of anything
    current = tmp_path / NAMES[4]
    found = history.find_previous(tmp_path, current, INVENTORY, ca.cert_path)
    assert found.run is not None and found.run.path.name == NAMES[0] and found.run.verified
    # Passed over and named: this inventory's run that is not evidence; not other inventories'.
    assert [(s.path.name, s.why) for s in found.skipped] == [(NAMES[2], "not signed")]
    # Without a CA nothing verifies: there is no previous run, and it says why.
    none = history.find_previous(tmp_path, current, INVENTORY, None)
    assert none.run is None and "no CA to verify earlier runs with" in none.note
    first = history.find_previous(tmp_path, tmp_path / NAMES[0], INVENTORY, ca.cert_path)
    assert first.run is None and f"no earlier run of inventory {INVENTORY}" in first.note


def test_a_limited_run_and_a_whole_run_are_not_each_others_previous_run(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    """A pre-change gate's `--limit` run written beside the nightly runs: the nightly's previous
    run is the previous nightly (not a run of three hosts, which would make the rest "gone"),
    the gate's is the previous run of the same limit, and retention counts each apart."""
    ca, signed_by = keys
    write_run(tmp_path, NAMES[0], {("db1", "WG-ARC-001"): PASS}, sign=signed_by)
    write_run(tmp_path, NAMES[1], {("db1", "WG-ARC-001"): PASS}, limit="web", sign=signed_by)
    write_run(tmp_path, NAMES[2], {("db1", "WG-ARC-001"): PASS}, limit="db1", sign=signed_by)
    current = tmp_path / NAMES[3]
    whole = history.find_previous(tmp_path, current, INVENTORY, ca.cert_path)
    assert whole.run is not None and whole.run.path.name == NAMES[0] and whole.skipped == ()
    key = history.selection_key(INVENTORY, "web")
    limited = history.find_previous(tmp_path, current, key, ca.cert_path)
    assert limited.run is not None and limited.run.path.name == NAMES[1]
    none = history.find_previous(
        tmp_path, current, history.selection_key(INVENTORY, "db2"), ca.cert_path
    )
    assert none.run is None and f"inventory {INVENTORY} --limit db2" in none.note
    current.mkdir()
    assert retention.prune(tmp_path, current, INVENTORY, 1) == []  # the whole run is signed
    for name in NAMES[4:6]:
        write_run(tmp_path, name, {("db1", "WG-ARC-001"): PASS}, limit="db1")
    key = history.selection_key(INVENTORY, "db1")
    removed = retention.prune(tmp_path, tmp_path / NAMES[5], key, 1)
    assert [d.name for d in removed] == [NAMES[4]]  # unsigned; the newest signed db1 run stays


def test_a_changed_run_is_named_and_passed_over_for_the_older_verified_one(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    write_run(tmp_path, NAMES[0], {("db1", "WG-ARC-001"): FAIL}, sign=signed_by)
    run = write_run(tmp_path, NAMES[1], {("db1", "WG-ARC-001"): FAIL}, sign=signed_by)
    doc = json.loads((run / "results.json").read_text())
    doc["hosts"]["db1"]["controls"][0]["result"] = PASS  # someone makes history look better
    (run / "results.json").write_text(json.dumps(doc))
    found = history.find_previous(tmp_path, tmp_path / NAMES[2], INVENTORY, ca.cert_path)
    assert found.run is not None and found.run.path.name == NAMES[0]
    [skipped] = found.skipped
    assert skipped.path == run and "changed: results.json" in skipped.why
    section = drift.section(found, results({("db1", "WG-ARC-001"): FAIL}), tmp_path / NAMES[2])
    assert section["previous"]["run"] == NAMES[0]
    assert section["skipped"] == [{"run": NAMES[1], "dir": str(run), "why": skipped.why}]
    text = "\n".join(drift.lines(section))
    assert f"drift since run {NAMES[0]} (signature and every file verified" in text
    assert f"passed over run {NAMES[1]}: does not verify" in text
    with pytest.raises(history.BaselineError, match="does not verify"):
        history.load_baseline(run, ca.cert_path)


def test_drift_names_what_changed_and_archive_failures_in_between(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    before = {("db1", "WG-ARC-001"): PASS, ("db1", "WG-ARC-005"): FAIL,
              ("db2", "WG-ARC-001"): PASS, ("gone", "WG-ARC-001"): PASS}  # fmt: skip
    prev_dir = write_run(tmp_path, NAMES[0], before, failed_count={"db1": 2, "db2": 5},
                         sign=signed_by)  # fmt: skip
    now = {("db1", "WG-ARC-001"): FAIL, ("db1", "WG-ARC-005"): PASS,
           ("db2", "WG-ARC-001"): ERROR, ("new", "WG-ARC-001"): FAIL}  # fmt: skip
    run_dir = write_run(tmp_path, NAMES[1], now, failed_count={"db1": 4, "db2": 5})
    d = drift.compare(verified(prev_dir, ca), results(now), run_dir)
    assert [(e["host"], e["control"]) for e in d["newly_failing"]] == [("db1", "WG-ARC-001")]
    assert [(e["host"], e["before"], e["now"]) for e in d["newly_error"]] == [("db2", PASS, ERROR)]
    assert [(e["host"], e["control"]) for e in d["fixed"]] == [("db1", "WG-ARC-005")]
    assert d["hosts_added"] == ["new"] and d["hosts_gone"] == ["gone"]
    # Archiving may work again today: the count that grew still says it failed in between.
    assert d["archive_failures"] == [{"host": "db1", "kind": "increase", "failures": 2,
                                      "before": 2, "after": 4,
                                      "last_failed_wal": "000000010000000000000007",
                                      "last_failed_time": "2026-11-26 01:02:03+00"}]  # fmt: skip
    text = "\n".join(drift.lines(d))
    assert "newly failing: db1 WG-ARC-001 (PASS -> FAIL)" in text
    assert "failed_count 2 -> 4" in text


def test_reset_missing_or_swapped_archiver_statistics_are_said_never_read_as_no_failures(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    verdicts = {("db1", "WG-ARC-001"): PASS, ("db2", "WG-ARC-001"): PASS,
                ("db3", "WG-ARC-001"): PASS}  # fmt: skip
    prev_dir = write_run(tmp_path, NAMES[0], verdicts, failed_count={"db1": 9, "db3": 4},
                         sign=signed_by)  # fmt: skip
    run_dir = write_run(tmp_path, NAMES[1], verdicts, failed_count={"db1": 1, "db2": 0, "db3": 4},
                        stats_reset="2026-11-26 03:00:00+00")  # fmt: skip
    previous = verified(prev_dir, ca)
    # After the run verified, someone lowers db3's earlier count: an increase would hide.
    swapped = prev_dir / "evidence" / "db3" / "postgresql.json"
    swapped.write_text(swapped.read_text().replace('"failed_count": 4', '"failed_count": 0'))
    d = drift.compare(previous, results(verdicts), run_dir)
    found = {a["host"]: (a["kind"], a.get("why", "")) for a in d["archive_failures"]}
    assert {host: kind for host, (kind, _) in found.items()} == {
        "db1": "reset",
        "db2": "unknown",
        "db3": "unknown",
    }
    assert found["db2"][1] == "no pg_stat_archiver reading in the previous run"
    assert "changed since its run was verified" in found["db3"][1]


def test_the_baseline_gate_fails_only_on_what_is_worse() -> None:
    base = {("db1", "WG-ARC-001"): FAIL, ("db1", "WG-ARC-005"): ERROR}
    same = results({("db1", "WG-ARC-001"): FAIL, ("db1", "WG-ARC-005"): ERROR})
    assert exit_status(same, "low") == 1
    assert exit_status(same, "low", baseline=base) == 0
    worse = results({("db1", "WG-ARC-001"): FAIL, ("db1", "WG-ARC-005"): FAIL})
    assert exit_status(worse, "low", baseline=base) == 1
    new_error = results({("db1", "WG-ARC-001"): FAIL, ("db2", "WG-ARC-001"): ERROR})
    assert exit_status(new_error, "low", baseline=base) == 6  # a host the baseline never judged
    # A baseline never excuses results that are missing altogether.
    assert exit_status(same, "low", baseline=base, complete=False) == 6
    waived = results({("db1", "WG-ARC-001"): WAIVED})
    assert exit_status(waived, "low", baseline={}) == 0


def test_a_baseline_must_be_a_walguard_run_that_verifies(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, signed_by = keys
    with pytest.raises(history.BaselineError, match="not a directory"):
        history.load_baseline(tmp_path / "nope", ca.cert_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(history.BaselineError, match=r"no readable walguard results\.json"):
        history.load_baseline(tmp_path / "empty", ca.cert_path)
    unsigned = write_run(tmp_path, NAMES[0], {("db1", "WG-ARC-001"): FAIL})
    with pytest.raises(history.BaselineError, match=f"--baseline {unsigned}: not signed"):
        history.load_baseline(unsigned, ca.cert_path)
    run = write_run(tmp_path, NAMES[1], {("db1", "WG-ARC-001"): FAIL}, sign=signed_by)
    # A baseline excuses failures: without a CA to verify it with, it is refused.
    with pytest.raises(history.BaselineError, match="needs --verify-ca"):
        history.load_baseline(run, None)
    loaded = history.load_baseline(run, ca.cert_path)
    assert loaded.verdicts() == {("db1", "WG-ARC-001"): FAIL} and loaded.verified


def test_retention_keeps_the_newest_n_and_the_newest_signed_run(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    _, signed_by = keys
    v = {("db1", "WG-ARC-001"): PASS}
    write_run(tmp_path, NAMES[0], v, sign=signed_by)
    write_run(tmp_path, NAMES[1], v, sign=signed_by)  # the newest signed one
    for name in NAMES[2:5]:
        write_run(tmp_path, name, v)
    write_run(tmp_path, NAMES[5], v, inventory="/other.yml")  # another inventory's
    (tmp_path / "notes").mkdir()  # not a run
    current = write_run(tmp_path, NAMES[6], v)
    removed = retention.prune(tmp_path, current, INVENTORY, 2)
    assert sorted(p.name for p in removed) == [NAMES[0], NAMES[2], NAMES[3]]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [NAMES[1], NAMES[4], NAMES[5], NAMES[6], "notes"]
    with pytest.raises(ValueError, match="keep at least"):
        retention.prune(tmp_path, current, INVENTORY, 0)


def test_runs_started_in_the_same_second_sort_in_the_order_they_were_made(tmp_path: Path) -> None:
    """Earlier runs are found by name: a run made in the same second as others comes after
    them, whatever its random part would have been."""
    from walguard.audit.runinfo import new_run_name

    made = []
    for _ in range(40):
        name = new_run_name(tmp_path)
        (tmp_path / name).mkdir()
        made.append(name)
        assert history.RUN_NAME.match(name)
    stamps = {n.split("-")[0] for n in made}
    assert len(stamps) <= 2  # 40 runs in at most two seconds: several share one
    assert [d.name for d in history.runs_in(tmp_path)] == made[::-1]
