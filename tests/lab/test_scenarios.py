"""Every scenario produces its documented, observable effect, and reset undoes it.

Observations go through the same door an auditor uses: SSH as the audit user (sudo where the
fact needs it), or a real TCP connection from a probe zone.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.conftest import Lab
from walguard.lab import settings
from walguard.lab.hosts import Host
from walguard.lab.scenarios import all_scenarios

OBSERVE = (Path(__file__).parent / "observe.sh").read_text()

SWITCH = "sudo -n -u postgres psql -XAtq -c 'SELECT txid_current()' -c 'SELECT pg_switch_wal()'"


def observe(lab: Lab, host: Host) -> dict[str, str]:
    out = lab.ssh(host, OBSERVE, check=False).stdout
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    facts["zone_b_connects"] = str(_zone_connects(settings.ZONES[1].netns, host.address))
    facts["zone_a_connects"] = str(_zone_connects(settings.ZONES[0].netns, host.address))
    return facts


def _zone_connects(netns: str, address: str) -> bool:
    argv = ["ip", "netns", "exec", netns, "nc", "-z", "-w", "3", address, "5432"]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0


def _failures(facts: dict[str, str]) -> int:
    return int(facts["archiver"].split("/")[1])


def assert_pristine(facts: dict[str, str], host: Host) -> None:
    assert facts["archive_mode"] == "on/false"
    assert facts["archive_command"] == "test -f /pg_archive/%f || cp %p /pg_archive/%f"
    assert _failures(facts) == 0
    assert int(facts["archiver"].split("/")[0]) >= 1
    assert int(facts["ready"]) <= 1
    assert facts["dir"] == "postgres:postgres 750"
    assert facts["mount"] == "ext4"
    assert int(facts["avail"]) > 512 * 1024 * 1024
    assert facts["pg_active"] == "active"
    assert facts["failed_units"].strip() == ""
    assert facts["journal_err"] == "0"
    assert facts["listen"].split() == sorted(["127.0.0.1:5432", f"{host.address}:5432"])
    assert facts["zone_a_connects"] == "True"
    assert facts["zone_b_connects"] == "False"
    assert facts["wal_level"] == "replica"
    assert facts["archive_timeout"] == "1min"
    assert facts["dir_exists"] == "yes"


def _wait_for_failure(lab: Lab, host: Host) -> dict[str, str]:
    """Switch WAL, then wait (bounded) until the archiver has recorded a failure."""
    lab.ssh(host, SWITCH)
    deadline = time.monotonic() + 30
    facts = observe(lab, host)
    while _failures(facts) == 0 and time.monotonic() < deadline:
        time.sleep(1)
        facts = observe(lab, host)
    return facts


def _pending_restart(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_mode"] == "on/true"


def _mode_off(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_mode"] == "off/false"


def _unguarded(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_command"] == "cp %p /pg_archive/%f"
    assert _failures(facts) == 0


def _permission_denied(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "postgres:postgres 750"  # the denial is not in the file modes
    facts = _wait_for_failure(lab, host)
    assert _failures(facts) > 0
    assert int(facts["pg_log_denied"]) > 0


def _owner_root(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "root:root 750"
    assert _failures(_wait_for_failure(lab, host)) > 0


def _mode_0777(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "postgres:postgres 777"
    assert _failures(facts) == 0


def _not_a_mount(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["mount"] == "none"
    assert facts["dir"] == "postgres:postgres 750"


def _fs_full(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["avail"] == "0"
    facts = _wait_for_failure(lab, host)
    assert _failures(facts) > 0
    assert int(facts["pg_log_nospace"]) > 0


def _gap(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    numbers = [int(s[16:], 16) for s in facts["segments"].split()]
    missing = set(range(numbers[0], numbers[-1] + 1)) - set(numbers)
    assert len(missing) == 1, facts["segments"]
    assert numbers[-1] - 1 in missing


def _backlog(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert int(facts["ready"]) >= 12
    assert _failures(facts) == 0


def _stopped(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["pg_active"] == "inactive"
    assert facts["listen"].strip() == ""


def _failed_unit(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["failed_units"].split() == ["walguard-lab-broken.service"]


def _journal_error(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["journal_err"] == "1"


def _listen_any(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["listen"].split() == ["0.0.0.0:5432", "[::]:5432"]


def _zone_b(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["zone_b_connects"] == "True"
    assert facts["zone_a_connects"] == "True"


def _wal_level_minimal(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["wal_level"] == "minimal"
    assert facts["archive_mode"] == "off/false"


def _timeout_off(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_timeout"] == "0"
    assert facts["archive_mode"] == "on/false"


def _stats_reset(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archiver"] == "0/0"
    assert facts["last_archived"] == ""
    assert facts["segments"].strip() != ""


def _last_missing(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["last_archived"] != ""
    assert facts["last_archived"] not in facts["segments"].split()
    assert facts["segments"].strip() != ""


def _dir_missing(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir_exists"] == "no"


def _df_hangs(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["avail"] == ""  # df gave nothing
    assert lab.ssh(host, "timeout 3 df /pg_archive", check=False).returncode == 124
    assert facts["pg_active"] == "active"


EFFECTS: dict[str, Callable[[Lab, Host, dict[str, str]], None]] = {
    "archive-mode-off-pending-restart": _pending_restart,
    "archive-mode-off": _mode_off,
    "archive-command-unguarded": _unguarded,
    "archive-command-permission-denied": _permission_denied,
    "archive-dir-owner-root": _owner_root,
    "archive-dir-mode-0777": _mode_0777,
    "archive-dir-not-a-mount": _not_a_mount,
    "archive-fs-full": _fs_full,
    "archive-gap": _gap,
    "ready-backlog": _backlog,
    "postgresql-stopped": _stopped,
    "failed-unit": _failed_unit,
    "journal-error": _journal_error,
    "listen-unexpected-address": _listen_any,
    "zone-b-allowed": _zone_b,
    "wal-level-minimal": _wal_level_minimal,
    "archive-timeout-off": _timeout_off,
    "archiver-stats-reset": _stats_reset,
    "last-segment-missing": _last_missing,
    "archive-dir-missing": _dir_missing,
    "df-hangs": _df_hangs,
}


def test_every_scenario_has_an_effect_test_and_documentation() -> None:
    scenarios = all_scenarios()
    assert set(scenarios) == set(EFFECTS)
    for sc in scenarios.values():
        assert sc.breaks and sc.observe, f"{sc.path} lacks its '# breaks:' / '# observe:' header"


@pytest.fixture
def scenario_host(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[2]
    yield host
    if "scenarios" in lab.walguard("lab", "status").stdout:
        lab.walguard("lab", "scenario", "reset", host.name)


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_scenario_effect_and_reset(lab: Lab, scenario_host: Host, name: str) -> None:
    host = scenario_host
    assert_pristine(observe(lab, host), host)
    lab.walguard("lab", "scenario", "apply", host.name, name)
    EFFECTS[name](lab, host, observe(lab, host))
    # Only this host is touched.
    for other in lab.hosts[:2]:
        assert_pristine(observe(lab, other), other)
    lab.walguard("lab", "scenario", "reset", host.name)
    assert_pristine(observe(lab, host), host)


def test_unknown_scenario_and_unknown_host_are_refused_with_the_valid_names(lab: Lab) -> None:
    bad = lab.walguard("lab", "scenario", "apply", "db1", "no-such-thing", check=False)
    assert bad.returncode == 1
    assert "unknown scenario 'no-such-thing'" in bad.stderr and "archive-fs-full" in bad.stderr
    bad = lab.walguard("lab", "scenario", "reset", "db42", check=False)
    assert bad.returncode == 1
    assert "unknown or stopped lab host 'db42'" in bad.stderr
