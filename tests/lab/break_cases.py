"""The break-and-fix cases, read from where they are declared: a control's declaration names
the lab scenarios that must make it FAIL (walguard.controls), and a scenario's header the
controls it may make FAIL too and what the tests wait for (walguard.lab.scenarios). Shared by
the audit tests and the scenario tests; and how they are batched, one case per lab host, so that
one audit judges several cases at once.

Why cases can share a batch: every scenario runs inside its own host (`lab scenario apply` runs
it there as root) and changes only that host: its configuration, files, units, firewall, clock
client, /etc/hosts, certificate. Nothing on another database host or on a probe host changes;
what other hosts see of it is that one host's address answering differently (the zone probes
connect to each host separately, and probe-a's time service is not touched by a client's
ntp-off). Within a batch no two cases may fail the same control, so a break that leaked to
another host would still show there as a FAIL that host's case does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from walguard.controls import load_all
from walguard.lab.scenarios import all_scenarios

BASELINE_FAIL = {"WG-ARC-004"}  # the lab's seed command `test -f … || cp` (low severity)


@dataclass(frozen=True)
class Case:
    scenario: str
    fails: set[str]  # must FAIL on the broken host
    may_fail: frozenset[str] = frozenset()  # may also FAIL there (a consequence that takes time)
    wait_for_failure: bool = False


def declared_cases() -> list[Case]:
    """One case per scenario some control declares, in scenario name order."""
    fails: dict[str, set[str]] = {}
    for control in load_all().values():
        for scenario in control.scenarios:
            fails.setdefault(scenario, set()).add(control.id)
    scenarios = all_scenarios()
    unknown = sorted(set(fails) - set(scenarios))
    if unknown:
        raise ValueError(f"controls declare scenarios that do not exist: {', '.join(unknown)}")
    return [
        Case(
            name,
            fails[name],
            frozenset(scenarios[name].may_fail),
            scenarios[name].wait == "archiver-failure",
        )
        for name in sorted(fails)
    ]


CASES = declared_cases()
COVERED = frozenset(c.scenario for c in CASES)


def _controls(case: Case) -> set[str]:
    return case.fails | case.may_fail


def batches(cases: list[Case], hosts: int) -> list[tuple[Case, ...]]:
    """The cases in batches of at most `hosts` (the i-th case of a batch breaks the i-th host),
    first fit, the cases with most controls first: no two cases of a batch share a control (FAIL
    or may FAIL)."""
    found: list[list[Case]] = []
    for case in sorted(cases, key=lambda c: -len(_controls(c))):
        fits = (
            b
            for b in found
            if len(b) < hosts and all(not (_controls(case) & _controls(other)) for other in b)
        )
        batch = next(fits, None)
        if batch is None:
            found.append([case])
        else:
            batch.append(case)
    return [tuple(b) for b in found]


def batch_id(batch: tuple[Case, ...]) -> str:
    """The test id of a batch: its scenarios in host order (db1's first)."""
    return "+".join(c.scenario for c in batch)
