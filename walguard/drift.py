"""Drift: what changed since the previous signed run of the same inventory.

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

from walguard.history import EarlierRun
from walguard.results import ERROR, Result, badness


def archiver_reading(run_dir: Path, host: str) -> dict[str, Any] | None:
    """The host's pg_stat_archiver row as the run's evidence recorded it, or None."""
    path = run_dir / "evidence" / host / "postgresql.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    archiver = doc.get("archiver") if isinstance(doc, dict) else None
    if not isinstance(archiver, dict) or not isinstance(archiver.get("failed_count"), int):
        return None
    return archiver


def _archiver_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    if before is None or after is None:
        missing = "previous" if before is None else "this"
        return {"kind": "unknown", "why": f"no pg_stat_archiver reading in the {missing} run"}
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
        change = _archiver_change(
            archiver_reading(previous.path, host), archiver_reading(run_dir, host)
        )
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
    }


def none_found(why: str) -> dict[str, Any]:
    return {"previous": None, "note": why}


def lines(drift: dict[str, Any] | None) -> list[str]:
    """The drift for the terminal summary."""
    if not drift:
        return []
    prev = drift.get("previous")
    if prev is None:
        return [f"drift: nothing to compare with ({drift.get('note')})"]
    trust = "verified" if prev["verified"] else f"NOT VERIFIED: {prev['verification']}"
    out = [f"drift since run {prev['run']} ({trust}):"]
    labels = (
        ("newly_failing", "newly failing"),
        ("newly_error", "newly ERROR"),
        ("fixed", "fixed"),
    )
    for key, label in labels:
        for e in drift[key]:
            out.append(f"  {label}: {e['host']} {e['control']} ({e['before']} -> {e['now']})")
    for key, label in (("hosts_added", "host added"), ("hosts_gone", "host gone")):
        out += [f"  {label}: {h}" for h in drift[key]]
    for a in drift["archive_failures"]:
        if a["kind"] == "increase":
            out.append(
                f"  archive failures on {a['host']}: failed_count {a['before']} -> {a['after']} "
                f"(last failed {a['last_failed_wal']} at {a['last_failed_time']})"
            )
        else:
            out.append(f"  archive failures on {a['host']}: {a['why']}")
    if len(out) == 1:
        out.append("  no change")
    return out
