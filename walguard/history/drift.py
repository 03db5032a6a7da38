"""Drift: what changed since the previous verified run of the same inventory and --limit
(walguard.history.previous.find_previous, the run WG-SYS-004's journal baseline comes from too).

Controls newly failing or newly in ERROR, controls fixed, hosts added or gone, and archive
failures in between: pg_stat_archiver's failed_count is cumulative, so a count that grew since
the last audit shows a failure that happened even when archiving has recovered since (every
control may PASS today). A count that cannot be compared (statistics reset, no reading) is said,
never read as "no failures".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from walguard.history.previous import ChangedSinceVerified, EarlierRun, Previous
from walguard.results import ERROR, Result, badness


def _archiver(data: bytes) -> dict[str, Any] | None:
    """The host's pg_stat_archiver row from its evidence/HOST/postgresql.json, or None."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    archiver = doc.get("archiver") if isinstance(doc, dict) else None
    if not isinstance(archiver, dict) or not isinstance(archiver.get("failed_count"), int):
        return None
    return archiver


def archiver_reading(run_dir: Path, host: str) -> dict[str, Any] | None:
    """This run's reading, as it wrote it."""
    try:
        return _archiver((run_dir / "evidence" / host / "postgresql.json").read_bytes())
    except OSError:
        return None


def previous_reading(previous: EarlierRun, host: str) -> tuple[dict[str, Any] | None, str]:
    """The previous run's reading as its verified manifest lists it: (reading, "") or
    (None, why it cannot be read)."""
    rel = f"evidence/{host}/postgresql.json"
    if rel not in previous.files:
        return None, "no pg_stat_archiver reading in the previous run"
    try:
        reading = _archiver(previous.read(rel))
    except ChangedSinceVerified as exc:
        return None, f"the previous run's reading cannot be trusted: {exc}"
    return reading, "" if reading is not None else "no pg_stat_archiver reading in the previous run"


def _archiver_change(
    before: dict[str, Any] | None, unread: str, after: dict[str, Any] | None
) -> dict[str, Any]:
    if before is None:
        return {"kind": "unknown", "why": unread}
    if after is None:
        return {"kind": "unknown", "why": "no pg_stat_archiver reading in this run"}
    b, a = int(before["failed_count"]), int(after["failed_count"])
    reset_before, reset_after = before.get("stats_reset"), after.get("stats_reset")
    common = {
        "before": b,
        "after": a,
        "last_failed_wal": after.get("last_failed_wal"),
        "last_failed_time": after.get("last_failed_time"),
    }
    if a < b or reset_before != reset_after:
        # The counters restarted (pg_stat_reset_shared, or a crash discarding statistics):
        # failures before the reset cannot be counted.
        return {
            **common,
            "kind": "reset",
            "stats_reset": reset_after,
            "why": "archiver statistics were reset since the previous run; "
            f"{a} failure(s) counted since the reset, any before it are unknown",
        }
    if a > b:
        return {**common, "kind": "increase", "failures": a - b}
    return {**common, "kind": "none"}


def compare(previous: EarlierRun, results: list[Result], run_dir: Path) -> dict[str, Any]:
    """The drift section of results.json."""
    before = previous.verdicts()
    prev_hosts = set(previous.doc.get("hosts", {}))
    now_hosts = {r.host for r in results}
    newly_failing, newly_error, fixed = [], [], []
    for r in results:
        if r.host not in prev_hosts:
            continue
        was = before.get((r.host, r.control))
        entry = {
            "host": r.host,
            "control": r.control,
            "severity": r.severity,
            "before": was,
            "now": r.result,
            "message": r.message,
        }
        worse = badness(r.result) > badness(was or "PASS")
        if worse and r.result == ERROR:
            newly_error.append(entry)
        elif worse:
            newly_failing.append(entry)
        elif was is not None and badness(was) > 0 and badness(r.result) == 0:
            fixed.append(entry)
    archive_failures = []
    for host in sorted(now_hosts & prev_hosts):
        reading, unread = previous_reading(previous, host)
        change = _archiver_change(reading, unread, archiver_reading(run_dir, host))
        if change["kind"] != "none":
            archive_failures.append({"host": host, **change})
    return {
        "previous": previous.as_dict(),
        "newly_failing": newly_failing,
        "newly_error": newly_error,
        "fixed": fixed,
        "hosts_added": sorted(now_hosts - prev_hosts),
        "hosts_gone": sorted(prev_hosts - now_hosts),
        "archive_failures": archive_failures,
        "previous_drills": previous_drills(previous.doc),
    }


def previous_drills(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each host's restore drill in the previous verified run (the report sets this week's
    beside it): when, whether it restored, and how long the restore took."""
    started = doc.get("run", {}).get("started")
    found: dict[str, dict[str, Any]] = {}
    for host, info in (doc.get("hosts") or {}).items():
        drill = info.get("restore_drill") if isinstance(info, dict) else None
        if isinstance(drill, dict) and "error" not in drill:
            restore_s = drill.get("restore_s")
            found[str(host)] = {
                "started": started,
                "restored": bool(drill.get("restored")),
                "restore_s": restore_s if isinstance(restore_s, int | float) else None,
            }
    return found


def section(previous: Previous, results: list[Result], run_dir: Path) -> dict[str, Any]:
    """The drift section of results.json: against the previous verified run, with the runs
    of this inventory passed over to find it (they did not verify) named."""
    skipped = [s.as_dict() for s in previous.skipped]
    if previous.run is None:
        return {"previous": None, "note": previous.note, "skipped": skipped}
    return {**compare(previous.run, results, run_dir), "skipped": skipped}


# The terminal names this many runs passed over; results.json and the page name them all.
SKIPPED_SHOWN = 5


def lines(drift: dict[str, Any] | None) -> list[str]:
    """The drift for the terminal summary."""
    if not drift:
        return []
    prev = drift.get("previous")
    skipped = drift.get("skipped") or []
    passed_over = [f"  passed over run {s['run']}: {s['why']}" for s in skipped[:SKIPPED_SHOWN]]
    if len(skipped) > SKIPPED_SHOWN:
        passed_over.append(f"  (and {len(skipped) - SKIPPED_SHOWN} more runs passed over)")
    if prev is None:
        return [f"drift: nothing to compare with ({drift.get('note')})", *passed_over]
    out = [f"drift since run {prev['run']} ({prev['verification']}):", *passed_over]
    labels = (
        ("newly_failing", "newly failing"),
        ("newly_error", "newly ERROR"),
        ("fixed", "fixed"),
    )
    changes = []
    for key, label in labels:
        for e in drift[key]:
            changes.append(f"  {label}: {e['host']} {e['control']} ({e['before']} -> {e['now']})")
    for key, label in (("hosts_added", "host added"), ("hosts_gone", "host gone")):
        changes += [f"  {label}: {h}" for h in drift[key]]
    for a in drift["archive_failures"]:
        if a["kind"] == "increase":
            changes.append(
                f"  archive failures on {a['host']}: failed_count {a['before']} -> {a['after']} "
                f"(last failed {a['last_failed_wal']} at {a['last_failed_time']})"
            )
        else:
            changes.append(f"  archive failures on {a['host']}: {a['why']}")
    return out + (changes or ["  no change"])
