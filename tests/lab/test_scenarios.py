"""Every scenario produces its documented, observable effect, and reset undoes it.

Observations go through the same door an auditor uses: SSH as the audit user (sudo where the
fact needs it), or a real TCP connection from a probe zone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.break_cases import COVERED
from tests.lab.scenario_effects import EFFECTS
from tests.lab.support import (
    HOST_COUNT,
    Lab,
    assert_pristine,
    observe,
    on_each,
)
from walguard.lab.hosts import Host
from walguard.lab.scenarios import all_scenarios

pytestmark = pytest.mark.lab


def test_every_scenario_is_documented_and_every_effect_names_one() -> None:
    scenarios = all_scenarios()
    assert set(EFFECTS) <= set(scenarios), set(EFFECTS) - set(scenarios)
    for sc in scenarios.values():
        assert sc.breaks and sc.observe, f"{sc.path} lacks its '# breaks:' / '# observe:' header"


# Scenarios that make a host a standby of db1 need db1 as it is: each runs alone, on db3.
WITH_DB1 = ("standby-of-db1", "standby-promoted")


def _batches(names: list[str], hosts: int) -> list[tuple[str, ...]]:
    """The scenarios in batches, one host each (the first on the first host, the next on the
    second, ...): every scenario runs inside its own host and changes only that host
    (tests.lab.break_cases)."""
    return [tuple(names[i : i + hosts]) for i in range(0, len(names), hosts)]


# A scenario with a break-and-fix case has its effect checked there (one apply, one reset).
UNCOVERED = sorted(set(all_scenarios()) - COVERED)
# On the hosts beside the lab (their own stream); those that need db1, each alone on db3.
BATCHES = _batches([name for name in UNCOVERED if name not in WITH_DB1], HOST_COUNT)
ALONE = [(name,) for name in UNCOVERED if name in WITH_DB1]


@pytest.fixture
def scenario_hosts(beside: Lab) -> Iterator[list[Host]]:
    yield beside.hosts
    beside.reset_applied()


@pytest.fixture
def db3(lab: Lab) -> Iterator[Host]:
    yield lab.hosts[2]
    lab.reset_applied()


@pytest.mark.parametrize("batch", BATCHES, ids=["+".join(b) for b in BATCHES])
def test_scenario_effect_and_reset(
    beside: Lab, scenario_hosts: list[Host], batch: tuple[str, ...]
) -> None:
    _effect_and_reset(beside, scenario_hosts, batch)


@pytest.mark.parametrize("batch", ALONE, ids=["+".join(b) for b in ALONE])
def test_a_standby_of_db1_scenario_effect_and_reset(
    lab: Lab, db3: Host, batch: tuple[str, ...]
) -> None:
    _effect_and_reset(lab, [db3], batch)


def _effect_and_reset(lab: Lab, hosts: list[Host], batch: tuple[str, ...]) -> None:
    """Each scenario of the batch on its own host of `lab`: pristine before, its effect after,
    every other host of `lab` untouched, pristine again after one reset."""
    placed = list(zip(batch, hosts, strict=False))
    used = {host.name for _, host in placed}

    def pristine(_: str, host: Host) -> None:
        assert_pristine(observe(lab, host), host)

    assert not on_each(placed, pristine)
    for name, host in placed:
        lab.walguard("lab", "scenario", "apply", host.name, name)

    def effect(name: str, host: Host) -> None:
        if name in EFFECTS:
            EFFECTS[name](lab, host, observe(lab, host))

    problems = on_each(placed, effect)
    # Only the scenarios' hosts are touched (the others are observed side by side).
    problems += on_each([("no scenario", h) for h in lab.hosts if h.name not in used], pristine)
    assert not problems, "\n".join(problems)
    lab.walguard("lab", "scenario", "reset", *sorted(used))
    not_pristine = on_each(placed, pristine)
    assert not not_pristine, "after reset:\n" + "\n".join(not_pristine)


def test_batches_run_every_scenario_once() -> None:
    run = [name for batch in BATCHES + ALONE for name in batch]
    assert sorted(run) == sorted(set(all_scenarios()) - COVERED)
    assert not {name for batch in BATCHES for name in batch} & set(WITH_DB1)
    assert all(len(b) == 1 for b in ALONE)


def test_unknown_scenario_and_unknown_host_are_refused_with_the_valid_names(lab: Lab) -> None:
    bad = lab.walguard("lab", "scenario", "apply", "db1", "no-such-thing", check=False)
    assert bad.returncode == 8  # walguard.exit_codes: the lab command failed
    assert "unknown scenario 'no-such-thing'" in bad.stderr and "archive-fs-full" in bad.stderr
    bad = lab.walguard("lab", "scenario", "reset", "db42", check=False)
    assert bad.returncode == 8  # walguard.exit_codes: the lab command failed
    assert "unknown or stopped lab host 'db42'" in bad.stderr
    # Several hosts: every name is checked before any host is reset.
    db3 = lab.hosts[2]
    running = db3.nspawn_pid()
    bad = lab.walguard("lab", "scenario", "reset", db3.name, "db42", check=False)
    assert bad.returncode == 8  # walguard.exit_codes: the lab command failed
    assert "unknown or stopped lab host 'db42'" in bad.stderr
    assert db3.nspawn_pid() == running
