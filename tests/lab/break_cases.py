"""The break-and-fix cases: which controls each lab scenario must make FAIL on the broken host
(and which it may), shared by the audit tests and the scenario tests; and how they are batched,
one case per lab host, so that one audit judges several cases at once.

Why cases can share a batch: every scenario runs inside its own host (`lab scenario apply` runs
it there as root) and changes only that host: its configuration, files, units, firewall, clock
client, /etc/hosts, certificate. Nothing on another database host or on a probe host changes;
what other hosts see of it is that one host's address answering differently (the zone probes
connect to each host separately, and probe-a's time service is not touched by a client's
ntp-off). A case whose scenario reaches beyond its host must say so (`alone`): it then gets a
batch of its own, with every other host pristine and checked to be. Within a batch no two cases
may fail the same control, so a break that leaked to another host would still show there as a
FAIL that host's case does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass

BASELINE_FAIL = {"WG-ARC-004"}  # the lab's seed command `test -f … || cp` (low severity)


@dataclass(frozen=True)
class Case:
    scenario: str
    fails: set[str]  # must FAIL on the broken host
    may_fail: frozenset[str] = frozenset()  # may also FAIL there (a consequence that takes time)
    wait_for_failure: bool = False
    alone: bool = False  # the scenario changes more than its own host: no other case beside it


CASES = [
    # A change waiting for a restart is also configuration not yet active (WG-SYS-005).
    Case("archive-mode-off-pending-restart", {"WG-ARC-001", "WG-SYS-005"}),
    # With archive_mode off, PostgreSQL shows archive_command as "(disabled)": not in effect.
    Case("archive-mode-off", {"WG-ARC-001", "WG-ARC-003"}),
    Case("wal-level-minimal", {"WG-ARC-001", "WG-ARC-002", "WG-ARC-003"}),
    Case("archive-command-unguarded", {"WG-ARC-003"}),
    Case("archive-timeout-off", {"WG-ARC-005"}),
    Case(
        "archive-dir-missing",
        {
            "WG-DIR-001",
            "WG-DIR-002",
            "WG-DIR-003",
            "WG-DIR-004",
            "WG-DIR-005",
            "WG-ACT-004",
            "WG-ACT-005",
            "WG-ACT-007",
            "WG-ACT-008",
        },
        frozenset({"WG-ACT-002"}),
    ),
    # An empty directory on the root filesystem: nothing archived there vouches for anything.
    Case(
        "archive-dir-not-a-mount",
        {"WG-DIR-002", "WG-ACT-004", "WG-ACT-005", "WG-ACT-007", "WG-ACT-008"},
    ),
    Case("archive-dir-owner-root", {"WG-DIR-003"}, frozenset({"WG-ACT-002"})),
    Case("archive-dir-mode-0777", {"WG-DIR-004"}),
    # Once a switch is attempted on the full volume (the scenario's effect check does one), the
    # copy that failed leaves a partial segment behind: WG-ACT-004/007 may then fail as well.
    Case(
        "archive-fs-full",
        {"WG-DIR-005"},
        frozenset({"WG-ACT-002", "WG-ACT-004", "WG-ACT-007"}),
    ),
    Case("archiver-stats-reset", {"WG-ACT-001", "WG-ACT-004"}),
    Case("archive-command-permission-denied", {"WG-ACT-002"}, wait_for_failure=True),
    Case("ready-backlog", {"WG-ACT-003"}),
    Case("last-segment-missing", {"WG-ACT-004"}),
    Case("archive-gap", {"WG-ACT-005"}),
    # The truncated segment is the last archived one until the next switch (then only WG-ACT-007).
    Case("segment-truncated", {"WG-ACT-007"}, frozenset({"WG-ACT-004"})),
    Case("segment-foreign", {"WG-ACT-007"}),
    # Read as root the segment is whole and ours; only its owner and mode say it is not safe.
    Case("segment-world-writable", {"WG-ACT-008"}),
    Case("segment-root-owned", {"WG-ACT-008"}),
    # The validation matrix.
    Case("postgresql-disabled", {"WG-SYS-001"}),
    Case("postgresql-parent-disabled", {"WG-SYS-001"}),
    Case("postgresql-enabled-runtime", {"WG-SYS-001"}),
    Case("package-half-configured", {"WG-SYS-002"}),
    # systemd logs the failed start at error priority: with no verified earlier run to compare
    # with (the break-and-fix audits are not signed), WG-SYS-004 sees it as a new error.
    Case("failed-unit", {"WG-SYS-003"}, frozenset({"WG-SYS-004"})),
    Case("config-changed-not-reloaded", {"WG-SYS-005"}),
    Case("unit-changed-no-reload", {"WG-SYS-006"}),
    Case("server-binary-replaced", {"WG-SYS-006"}),
    Case("listen-unexpected-address", {"WG-NET-001"}),
    Case("listener-stray", {"WG-NET-002"}),
    # A flushed firewall also lets zone-b through: both are what the break means.
    Case("firewall-flushed", {"WG-NET-003", "WG-NET-004"}),
    Case("zone-b-allowed", {"WG-NET-004"}),
    Case("ntp-off", {"WG-IDN-001"}),
    Case("hosts-wrong-address", {"WG-IDN-002"}),
    # zone-a's client verifies TLS too, and refuses the certificate for another name.
    Case("tls-cert-wrong-name", {"WG-IDN-003", "WG-NET-004"}),
    Case("tls-cert-expiring", {"WG-IDN-003"}),
]

COVERED = frozenset(c.scenario for c in CASES)


def _controls(case: Case) -> set[str]:
    return case.fails | case.may_fail


def batches(cases: list[Case], hosts: int) -> list[tuple[Case, ...]]:
    """The cases in batches of at most `hosts` (the i-th case of a batch breaks the i-th host),
    first fit in the order given: no two cases of a batch share a control (FAIL or may FAIL),
    and a case marked `alone` is the only one in its batch."""
    found: list[list[Case]] = []
    for case in cases:
        fits = (
            b
            for b in found
            if not case.alone
            and not any(other.alone for other in b)
            and len(b) < hosts
            and all(not (_controls(case) & _controls(other)) for other in b)
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
