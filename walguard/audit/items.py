"""Controls as pytest items: one item per (control, host), judged by the one judge on that host's
facts, which are collected once per process and cached.

pytest still selects (`-k`, `-m`), distributes (xdist, grouped by host), reports (junit, html)
and counts; the verdict is the judge's alone, so it does not depend on pytest's assertion
rewriting or on Python's optimisation flags.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import pytest

from walguard.audit.run import item_name
from walguard.controls import Control
from walguard.drill.record import drill_record
from walguard.drill.run import drill_step
from walguard.facts.collect import collect
from walguard.facts.fanout import Done, FanOut
from walguard.facts.host import HostFacts
from walguard.facts.network import BLOCKED, REACHED, TLS_FAILED, ZoneProbes
from walguard.facts.transport import Cancel
from walguard.history.journal_baseline import Baselines, not_looked_up
from walguard.inventory.load import Target
from walguard.judge import Verdict, judge
from walguard.results import ERROR, NOT_APPLICABLE, PASS, Result


class VerdictRaised(Exception):
    """Carries a FAIL or ERROR verdict out of runtest, so pytest counts the item as failed."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"{verdict.result}: {verdict.message}")
        self.verdict = verdict


class EvidenceSink(Protocol):
    """Where the run's evidence files go (walguard.report.evidence_files.EvidenceFiles): each
    host's once, as its facts are collected, and the zone probes' attempts."""

    def host(self, found: HostFacts) -> None: ...

    def zone_probe(self, probe: str, raw: str) -> None: ...


class FactsCache:
    """Each host's facts, collected once per process; any failure becomes the host's ERROR.

    `prefetch` collects the selected hosts' facts many at once (walguard.facts.fanout) before pytest
    judges them; a host that was not prefetched (on an xdist worker, which learns its hosts one
    at a time) is collected when its first control asks for it.
    """

    def __init__(
        self,
        evidence: EvidenceSink | None,
        *,
        active_probe: bool,
        probe_wait_s: float,
        restore_drill: bool = False,
        restorers: Mapping[str, Target] | None = None,
        zones: ZoneProbes | None = None,
        journal_baselines: Baselines | None = None,
        process: str = "main",
    ) -> None:
        # Which process collects ("main", or the xdist worker's id from its workerinput: not
        # PYTEST_XDIST_WORKER, which an audit started from another pytest-xdist run inherits).
        self.process = process
        self.evidence = evidence  # None: a run without a directory writes no evidence
        self.zones = zones or ZoneProbes([], [])
        self.active_probe = active_probe
        self.restore_drill = restore_drill
        self.restorers: Mapping[str, Target] = restorers or {}  # host -> its restore host
        self.probe_wait_s = probe_wait_s
        self.facts: dict[str, HostFacts] = {}
        self.collections: dict[str, int] = {}  # host -> collections made (should be 1)
        self.timing: dict[str, dict[str, Any]] = {}  # host -> when its facts were collected
        self.cancel = Cancel()  # ends the connections of an interrupted run
        # WG-SYS-004's baselines from the previous verified run (on a worker, from what the
        # controller found); without them every host's is unknown.
        self.journal_baselines: Baselines = journal_baselines or not_looked_up(
            "the previous run was not looked up"
        )
        self._fanout: FanOut | None = None
        # Per host, so hosts are collected side by side; re-entrant, as get() holds its host's
        # lock while it collects a host nobody prefetched.
        self._locks: dict[str, threading.RLock] = {}
        self._lock = threading.Lock()  # guards _locks
        # host -> the facts its host info was last recorded from (see host_info).
        self._recorded: dict[str, HostFacts | None] = {}
        # Hosts a selected control judges the zone probes' attempts on (want_zones).
        self.zone_hosts: frozenset[str] = frozenset()

    def prefetch(
        self,
        targets: list[Target],
        *,
        forks: int,
        zones: bool,
        on_done: Callable[[Done], None] | None = None,
    ) -> FanOut:
        """Starts collecting these hosts' facts, `forks` at a time (and, with `zones`, the zone
        probes' attempts beside them); `wait()` on the result until every host has ended."""
        fanout = FanOut(self._collect_once, forks, on_done, cancel=self.cancel)
        if zones:
            fanout.beside(lambda: self.zones.run(self.cancel))
        fanout.start(targets)
        self._fanout = fanout
        return fanout

    def get(self, target: Target, *, zones: bool = False) -> HostFacts:
        """The host's facts; with `zones`, also the zone probes' attempts at it (the probe hosts
        are asked only when a selected control reads them)."""
        pending = self._fanout.pending(target.name) if self._fanout is not None else None
        if pending is not None:
            pending.result()  # collected into self.facts by the fan-out's thread
        with self._host_lock(target.name):
            if target.name not in self.facts:
                self._collect_once(target)
            found = self.facts[target.name]
            if zones and found.reachable and found.zones.error is not None:
                found = replace(found, zones=self.zones.for_host(found.host))
                self._write_zone_evidence()
                self.facts[target.name] = found
            return found

    def want_zones(self, hosts: Iterable[str]) -> None:
        """The hosts a selected control reads the zone probes' attempts on (known when
        collection ends): every control on such a host is then judged on facts that hold them,
        so the host's facts do not change between its controls."""
        self.zone_hosts = frozenset(hosts)

    def release(self) -> None:
        """Forgets the facts (when every item is judged); what results.json records stays."""
        self.facts.clear()
        self._recorded.clear()
        self._fanout = None

    def host_info(self, target: Target, found: HostFacts | None) -> dict[str, Any] | None:
        """What results.json records about a host (walguard.audit.run.HostInfo), from the facts
        an item was judged on; None when it was already recorded from these very facts. A
        host's facts do not change after they are collected (the zone probes' attempts are
        added before its first control is judged: want_zones), so this is built once per host,
        not once per control."""
        if found is None and target.name in self._recorded:
            return None  # an item that never reached the facts adds nothing
        if target.name in self._recorded and self._recorded[target.name] is found:
            return None
        self._recorded[target.name] = found
        return {
            "address": target.address,
            "reachable": bool(found and found.reachable),
            "round_trips": found.round_trips if found else 0,
            "error": found.error if found else None,
            "ssh_attempts": list(found.ssh_attempts) if found else [],
            # Which process collected the facts, how often: more than once is repeated work.
            "collected_by": self.process,
            "collections": self.collections.get(target.name, 0),
            # When: the fan-out's order (a hung host does not hold up the others) is visible.
            "collection": self.timing.get(target.name),
            # The host x zone matrix of the report: what each zone's probe host saw.
            "zones": zone_matrix(target, found),
            # --restore-drill: the drill record (walguard.drill.record), or why there is none.
            "restore_drill": drill_record(found),
            # WG-RST-002's measure (walguard.facts.wal_window), for the report and the metrics.
            "data_loss_window": window_record(found),
        }

    def _host_lock(self, name: str) -> threading.RLock:
        with self._lock:
            return self._locks.setdefault(name, threading.RLock())

    def _collect_once(self, target: Target) -> HostFacts:
        with self._host_lock(target.name):
            if target.name in self.facts:
                return self.facts[target.name]
            self.collections[target.name] = self.collections.get(target.name, 0) + 1
            started, clock = utc_ms(), time.monotonic()
            found = self._collect(target)
            self.timing[target.name] = {
                "started": started,
                "finished": utc_ms(),
                "seconds": round(time.monotonic() - clock, 3),
            }
            self.facts[target.name] = found
            return found

    def _collect(self, target: Target) -> HostFacts:
        try:
            found = collect(
                target,
                active_probe=self.active_probe,
                probe_wait_s=self.probe_wait_s,
                then=drill_step(self.probe_wait_s, self.restorers) if self.restore_drill else None,
                cancel=self.cancel,
            )
        except Exception as exc:  # whatever it was, it is this host's ERROR, once
            reason = f"{target.name}: fact collection failed: {type(exc).__name__}: {exc}"
            reason = " ".join(reason.split())
            found = HostFacts.unreachable(target.name, target.address, reason)
        found = self._with_history(found)
        if self.evidence is not None:
            self.evidence.host(found)
            # The outputs are on disk now, and nothing reads them from memory again: a thousand
            # hosts' collector outputs need not stay in memory until the run ends.
            found = replace(found, evidence=MappingProxyType({}), raw=MappingProxyType({}))
        return found

    def _with_history(self, found: HostFacts) -> HostFacts:
        """The previous run's journal errors for this host: the baseline WG-SYS-004 compares."""
        platform = found.platform
        if not found.reachable or platform is None:
            return found
        baseline = self.journal_baselines.for_host(found.host)
        return replace(found, platform=replace(platform, journal_baseline=baseline))

    def _write_zone_evidence(self) -> None:
        if self.evidence is None:
            return
        for probe, raw in self.zones.evidence.items():
            self.evidence.zone_probe(probe, raw)


def utc_ms() -> str:
    """Now, in UTC to the millisecond: when a host's facts were collected (results.json)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def reads_zones(fn: Callable[..., Any]) -> bool:
    """Whether a control judges the zone probes' attempts (they are asked only then)."""
    return "zones" in inspect.signature(fn).parameters


# Marks are made once per control and per host rather than per item: at 35,000 items pytest's
# mark machinery costs seconds.
@functools.cache
def _control_marks(control_id: str, severity: str) -> tuple[pytest.MarkDecorator, ...]:
    return pytest.mark.walguard_control(control_id), getattr(pytest.mark, f"severity_{severity}")


@functools.cache
def _host_mark(host: str) -> pytest.MarkDecorator:
    # One worker judges all of a host's controls, so its facts are collected once.
    return pytest.mark.xdist_group(host)


@functools.cache
def _file_location(session: pytest.Session, path: Path, fn: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(fn, "__code__", None)
    return session._node_location_to_relpath(path), (code.co_firstlineno - 1) if code else 0


class ControlItem(pytest.Item):
    """One control judged on one host."""

    def __init__(
        self,
        *,
        fn: Callable[..., Any],
        meta: Control,
        target: Target,
        cache: FactsCache,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fn = fn
        self.meta = meta
        self.target = target
        self.cache = cache
        self.verdict: Verdict | None = None
        self.facts: HostFacts | None = None
        self.reads_zones = reads_zones(fn)
        for mark in (*_control_marks(meta.id, meta.severity), _host_mark(target.name)):
            self.add_marker(mark)
        # `-k WG-ARC-001`, `-k test_archive_mode_on` and `-k db1` all select.
        self.extra_keyword_matches.update({meta.id, fn.__name__, target.name})

    @classmethod
    def make(
        cls,
        parent: pytest.Collector,
        fn: Callable[..., Any],
        meta: Control,
        target: Target,
        cache: FactsCache,
    ) -> ControlItem:
        item: ControlItem = cls.from_parent(
            parent,
            name=item_name(meta.id, target.name),
            fn=fn,
            meta=meta,
            target=target,
            cache=cache,
        )
        return item

    def runtest(self) -> None:
        zones = self.reads_zones or self.target.name in self.cache.zone_hosts
        self.facts = self.cache.get(self.target, zones=zones)
        self.verdict = judge(self.fn, self.facts, self.target)
        if self.verdict.result == PASS:
            return
        if self.verdict.result == NOT_APPLICABLE:
            pytest.skip(f"NOT APPLICABLE: {self.verdict.message}")
        raise VerdictRaised(self.verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        # An auditor's reason, never a traceback: the verdict says what was found.
        if isinstance(excinfo.value, VerdictRaised):
            return str(excinfo.value)
        return f"ERROR: internal error: {type(excinfo.value).__name__}: {excinfo.value}"

    def reportinfo(self) -> tuple[Path, int, str]:
        code = getattr(self.fn, "__code__", None)
        return (
            self.path,
            (code.co_firstlineno - 1) if code else 0,
            f"{self.meta.id} on {self.target.name}",
        )

    @property
    def location(self) -> tuple[str, int | None, str]:
        # pytest's own works the relative path out again for every item (a cached property,
        # but of each item); the file and line are the control's, the same for every host.
        relpath, line = _file_location(self.session, self.path, self.fn)
        return (relpath, line, f"{self.meta.id} on {self.target.name}")

    def result(self) -> Result:
        """This item's result; an item that ended without a verdict (an exception outside the
        judge) is ERROR, never PASS."""
        verdict = self.verdict or Verdict(ERROR, "the control ended without a verdict")
        return Result(
            self.target.name,
            self.meta.id,
            self.meta.title,
            self.meta.severity,
            verdict.result,
            verdict.message,
            self.nodeid,
        )


def zone_matrix(target: Target, found: HostFacts | None) -> dict[str, dict[str, Any]]:
    attempts = found.zones.value if found is not None and found.zones.value else {}
    matrix = {}
    for zone, expect in target.policy.zones:
        attempt = attempts.get(zone)
        outcome = attempt.outcome if attempt else "no probe host"
        matrix[zone] = {
            "expect": "reach" if expect else "refuse",
            "outcome": outcome,
            "ok": outcome in (REACHED if expect else BLOCKED) and outcome != TLS_FAILED,
            "probe": attempt.probe if attempt else None,
            "detail": attempt.detail if attempt else "",
        }
    return matrix


def window_record(found: HostFacts | None) -> dict[str, Any] | None:
    """The host's data-loss window as results.json keeps it; None when the host was not read."""
    if found is None or not found.reachable:
        return None
    part = found.window
    return part.value.record() if part.value is not None else {"error": part.error}
