"""One audit run's state: the (host, control) pairs it means to judge, the results it got, what
it learned about each host, and the complete set at the end.

The expected set is fixed when collection ends. Whatever happens afterwards (a crashed xdist
worker, `-x`, an interrupt), every expected pair without a final result is ERROR with the reason,
so the gate can never go green on results that are simply not there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from walguard.controls import Control
from walguard.inventory.load import Target
from walguard.results import ERROR, Result, exit_status

Pair = tuple[str, str]  # (host, control id)


def item_name(control_id: str, host: str) -> str:
    """The pytest item name of a control on a host (its node id ends with it)."""
    return f"{control_id}[{host}]"


def pair_of_nodeid(nodeid: str) -> Pair | None:
    """(host, control) from a node id `checks/x.py::WG-ARC-001[db1]` (xdist may append
    `@group`; a host name may itself hold `::`, as an IPv6 address does); None for anything
    else."""
    start = nodeid.find("::WG-")
    if start < 0 or "[" not in nodeid[start:] or "]" not in nodeid[start:]:
        return None
    name = nodeid[start + 2 : nodeid.rindex("]")]
    control, _, host = name.partition("[")
    return (host, control) if host else None


@dataclass
class HostInfo:
    """What the run learned about a host beyond its results (recorded in results.json)."""

    address: str
    reachable: bool | None = None
    error: str | None = None
    round_trips: int = 0
    ssh_attempts: list[dict[str, Any]] = field(default_factory=list)
    collections: dict[str, int] = field(default_factory=dict)  # process -> collections made
    crashed: str | None = None  # the xdist worker judging it died
    zones: dict[str, Any] = field(default_factory=dict)  # zone -> expect, outcome, ok, probe
    collection: dict[str, Any] | None = None  # when its facts were collected (UTC, seconds)
    restore_drill: dict[str, Any] | None = None  # --restore-drill's record (walguard.drill.record)
    data_loss_window: dict[str, Any] | None = None  # WG-RST-002's measure, or why there is none

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reachable": bool(self.reachable),
            "error": self.error,
            "round_trips": self.round_trips,
            "ssh_attempts": self.ssh_attempts,
            "fact_collections": sorted(self.collections),
            "worker_crash": self.crashed,
            "collections": sum(self.collections.values()),
            "zones": self.zones,
            "collection": self.collection,
            # Only in a run that drilled: other runs' results.json stay as they were.
            **({"restore_drill": self.restore_drill} if self.restore_drill is not None else {}),
            **(
                {"data_loss_window": self.data_loss_window}
                if self.data_loss_window is not None
                else {}
            ),
        }


@dataclass
class AuditRun:
    targets: list[Target]
    run_dir: Path | None
    fail_on: str
    controls: dict[str, Control] = field(default_factory=dict)  # every control that exists
    expected: dict[Pair, Control] = field(default_factory=dict)  # what this run will judge
    total: int = 0  # pairs there are (before -k/-m deselection)
    results: dict[Pair, Result] = field(default_factory=dict)
    hosts: dict[str, HostInfo] = field(default_factory=dict)
    # --baseline: (host, control) -> result of the earlier run; only what is worse fails
    baseline: dict[Pair, str] | None = None
    # A staged restart's plan and record (walguard.remediate.rollout), when the run made one.
    rollout: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for t in self.targets:
            self.hosts.setdefault(t.name, HostInfo(t.address))
        # complete() is asked for by the gate, the writers and the summary: worked out once
        # for each state of the run (every change below moves the version on).
        self._version = 0
        self._complete: tuple[tuple[str, int], list[Result]] | None = None

    def expect(self, pairs: dict[Pair, Control], total: int) -> None:
        self.expected = dict(pairs)
        self.total = total
        self._version += 1

    def record(self, res: Result, host_info: dict[str, Any] | None = None) -> None:
        self.results[(res.host, res.control)] = res
        self._version += 1
        if host_info is not None:
            self.record_host(res.host, host_info)

    def record_host(self, host: str, host_info: dict[str, Any]) -> None:
        """What a process learned about a host (walguard.audit.items.FactsCache.host_info):
        recorded when its facts were first judged, again only if they changed."""
        info = self.hosts.setdefault(host, HostInfo(str(host_info.get("address", ""))))
        info.reachable = bool(host_info.get("reachable"))
        info.error = host_info.get("error")
        info.round_trips = int(host_info.get("round_trips", 0))
        info.ssh_attempts = list(host_info.get("ssh_attempts", []))
        info.zones = dict(host_info.get("zones") or info.zones)
        info.collection = host_info.get("collection") or info.collection
        info.restore_drill = host_info.get("restore_drill") or info.restore_drill
        info.data_loss_window = host_info.get("data_loss_window") or info.data_loss_window
        process = str(host_info.get("collected_by", "main"))
        made = int(host_info.get("collections", 0))
        info.collections[process] = max(info.collections.get(process, 0), made)

    def note_crash(self, host: str, reason: str) -> None:
        if host in self.hosts:
            self.hosts[host].crashed = reason
            self._version += 1

    def missing(self) -> list[Pair]:
        return sorted(p for p in self.expected if p not in self.results)

    def complete(self, why_missing: str) -> list[Result]:
        """Every expected pair's result, sorted by host and control; a pair that got none is
        ERROR with the reason (a crash of its host's worker, else `why_missing`)."""
        key = (why_missing, self._version)
        if self._complete is None or self._complete[0] != key:
            self._complete = (key, self._completed(why_missing))
        return list(self._complete[1])

    def _completed(self, why_missing: str) -> list[Result]:
        out = []
        for pair, meta in sorted(self.expected.items()):
            res = self.results.get(pair)
            if res is None:
                host = self.hosts.get(pair[0])
                reason = host.crashed if host is not None and host.crashed else why_missing
                res = Result(pair[0], meta.id, meta.title, meta.severity, ERROR, reason, "")
            out.append(res)
        # Results for pairs outside the expected set (none in a sound run) are kept, not lost.
        out += [r for p, r in sorted(self.results.items()) if p not in self.expected]
        return out

    def gate(self, why_missing: str) -> int:
        return exit_status(
            self.complete(why_missing),
            self.fail_on,
            complete=not self.missing(),
            baseline=self.baseline,
        )

    def replace_result(self, pair: Pair, **changes: Any) -> None:
        self.results[pair] = replace(self.results[pair], **changes)
        self._version += 1
