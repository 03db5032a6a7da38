"""Every scenario produces its documented, observable effect, and reset undoes it.

Observations go through the same door an auditor uses: SSH as the audit user (sudo where the
fact needs it), or a real TCP connection from a probe zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.lab.break_cases import COVERED
from tests.lab.scenario_effects import EFFECTS
from tests.lab.support import (
    Lab,
    assert_pristine,
    observe,
)
from walguard.lab.hosts import Host
from walguard.lab.scenarios import all_scenarios

pytestmark = pytest.mark.lab


def test_every_scenario_is_documented_and_every_effect_names_one() -> None:
    scenarios = all_scenarios()
    assert set(EFFECTS) <= set(scenarios), set(EFFECTS) - set(scenarios)
    for sc in scenarios.values():
        assert sc.breaks and sc.observe, f"{sc.path} lacks its '# breaks:' / '# observe:' header"


@pytest.fixture
def scenario_host(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[2]
    yield host
    lab.reset_applied()


# A scenario with a break-and-fix case has its effect checked there (one apply, one reset).
@pytest.mark.parametrize("name", sorted(set(all_scenarios()) - COVERED))
def test_scenario_effect_and_reset(lab: Lab, scenario_host: Host, name: str) -> None:
    host = scenario_host
    assert_pristine(observe(lab, host), host)
    lab.walguard("lab", "scenario", "apply", host.name, name)
    if name in EFFECTS:
        EFFECTS[name](lab, host, observe(lab, host))
    # Only this host is touched (the others are observed side by side).
    with ThreadPoolExecutor() as pool:
        others = list(pool.map(lambda other: (other, observe(lab, other)), lab.hosts[:2]))
    for other, facts in others:
        assert_pristine(facts, other)
    lab.walguard("lab", "scenario", "reset", host.name)
    assert_pristine(observe(lab, host), host)


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
