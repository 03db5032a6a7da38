"""Platform: the PostgreSQL service as systemd runs it, what the operator checks after a change
(`systemctl --failed`, `journalctl -p err -b`), and whether what runs is what is configured and
installed (no pending restart, no unapplied configuration, no stale unit or binary)."""

from __future__ import annotations

import fnmatch
import re

from walguard.controls import control, fail
from walguard.facts.boot import PERSISTENT, BootPath
from walguard.facts.platform import PlatformFacts
from walguard.facts.postgres_state import Postgres
from walguard.history.journal_baseline import new_errors
from walguard.inventory.load import Target
from walguard.policy.model import Policy


@control(
    "WG-SYS-001",
    "the PostgreSQL unit is active and started at boot",
    severity="critical",
    refs=("BSI APP.4.3", "BSI SYS.1.1"),
    reads=("unit", "service_active", "boot_default", "boot_units", "start_conf"),
    scenarios=("postgresql-disabled", "postgresql-parent-disabled", "postgresql-enabled-runtime"),
    rationale="A stopped cluster archives nothing; one that nothing starts at boot does not come "
    "back after a reboot, and the archive silently stops growing.",
    detail="the PostgreSQL unit is active and started at boot: a chain of persistent links from "
    "the default target down to it (on Debian `postgresql.service` enabled, the generator's link, "
    "the cluster's `start.conf` = `auto`; on RHEL-like hosts the versioned unit enabled); a unit "
    "enabled only at runtime (`enabled-runtime`, under /run) is not enabled, and the message names "
    "the chain it checked",
)
def test_postgres_unit_active_enabled(platform: PlatformFacts, policy: Policy) -> str:
    service = policy.postgres_service
    unit = platform.unit.get()
    if unit.load_state != "loaded":
        fail(f"{service} is not loaded ({unit.load_state or 'no such unit'})")
    if unit.active_state != "active":
        fail(f"{service} is {unit.active_state} ({unit.sub_state}), not active")
    return f"{unit.id} active ({unit.sub_state}); {_started_at_boot(platform.boot.get(), service)}"


def _started_at_boot(boot: BootPath, service: str) -> str:
    """How the service is started at boot, or a FAIL naming the link that is missing."""
    if boot.start_conf is not None and boot.start_conf != "auto":
        fail(
            f"{service} is active but its cluster's start.conf says {boot.start_conf!r}: "
            "Debian's postgresql generator does not start it at boot (set it to auto, then "
            "`systemctl daemon-reload`)"
        )
    chain = boot.chain(service)
    if not chain:
        tops = [u for u in boot.units.values() if not u.pulled_by]
        found = ", ".join(f"{u.id} ({u.unit_file_state})" for u in tops) or service
        fix = [u.id for u in tops if not u.id.endswith(".target")]
        hint = f": `systemctl enable {' '.join(fix)}`" if fix else ""
        fail(
            f"{service} is active but nothing starts it at boot: the units that pull it in stop "
            f"at {found}, not the default target {boot.default_target}{hint}"
        )
    described = []
    for name in chain:
        state = boot.units[name].unit_file_state if name in boot.units else "?"
        generated = name == service and boot.generated_by_debian(service, chain)
        if not name.endswith(".target") and state not in PERSISTENT and not generated:
            fail(
                f"{name} is {state or 'in no known state'}: its link does not survive a reboot, "
                f"so {service} is not started at boot (chain {' <- '.join(reversed(chain))}); "
                f"`systemctl enable {name}`"
            )
        note = ", Debian's generator: start.conf auto" if generated else ""
        described.append(f"{name} ({state}{note})" if not name.endswith(".target") else name)
    return "started at boot by " + " <- ".join(reversed(described))


@control(
    "WG-SYS-002",
    "the server's package is installed, fully configured and at an allowed version",
    severity="high",
    refs=("BSI OPS.1.1.3", "BSI APP.4.3"),
    reads=("postgres_package",),
    scenarios=("package-half-configured",),
    rationale="A half-configured or unexpected package version means an interrupted or "
    "unreviewed upgrade: the server that runs may not be the one that was approved.",
    detail="the package owning the running server binary is installed and configured (dpkg `ii`, "
    "or rpm) at a version the policy allows (default: the server's major version)",
)
def test_postgres_package(platform: PlatformFacts, pg: Postgres, policy: Policy) -> str:
    pkg = platform.package.get()
    if pkg.manager == "dpkg" and not pkg.status.startswith("ii"):
        fail(
            f"package {pkg.name} {pkg.version} is in dpkg state {pkg.status.strip()!r}, not "
            "installed and configured ('ii'): an interrupted install or upgrade"
        )
    patterns = policy.postgres_package_versions or (f"{pg.version.split('.')[0]}.*",)
    if not any(fnmatch.fnmatchcase(pkg.version, p) for p in patterns):
        fail(
            f"package {pkg.name} is at version {pkg.version}, which the policy does not allow "
            f"({', '.join(patterns)})"
        )
    return f"{pkg.name} {pkg.version} ({pkg.manager}), allowed by {', '.join(patterns)}"


@control(
    "WG-SYS-003",
    "no systemd unit has failed (systemctl --failed is empty)",
    severity="medium",
    refs=("BSI SYS.1.1", "BSI OPS.1.1.2"),
    reads=("failed_units",),
    scenarios=("failed-unit",),
    rationale="The operators' validation matrix: after a change, systemctl --failed stays "
    "empty. A failed unit is a service the host was meant to run and does not.",
    detail="`systemctl --failed` is empty; the message lists the failed units",
)
def test_no_failed_units(platform: PlatformFacts) -> None:
    failed = platform.failed_units.get()
    if failed:
        fail(f"{len(failed)} failed unit(s): {', '.join(failed)}")


@control(
    "WG-SYS-004",
    "no new error-priority journal entries since the previous run (journalctl -p err -b)",
    severity="medium",
    refs=("BSI OPS.1.1.5", "DORA Art. 10"),
    reads=("journal_errors",),
    rationale="The operators' validation matrix: a change must not bring new errors. Errors "
    "are compared with the same host's errors in the previous verified run's evidence (the run "
    "drift compares with), normalised so that process ids and timestamps do not make every line "
    "new; known noise is in the policy. Without a verified previous run every error that is not "
    "known noise counts: an unverifiable baseline would let anyone excuse errors.",
    detail="no new `journalctl -p err -b` entries since the previous verified run (the one drift "
    "compares with; normalised; known noise in the policy); without one, every error line that is "
    "not known noise fails, and the message says so",
)
def test_no_new_journal_errors(platform: PlatformFacts, policy: Policy) -> str:
    current = platform.journal.get()
    baseline = platform.journal_baseline.get()
    found = new_errors(current, baseline.lines, policy.journal_noise)
    against = baseline.note if baseline.lines is None else f"compared with run {baseline.run}"
    if found:
        shown = "; ".join(f"{line!r}" for line in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        fail(f"{len(found)} new journal error(s) ({against}): {shown}{more}")
    return f"no journal error this boot beyond the baseline and the noise list ({against})"


@control(
    "WG-SYS-005",
    "the configuration on disk is what the server runs (nothing pending, nothing in error)",
    severity="high",
    refs=("BSI OPS.1.1.3", "BSI APP.4.3"),
    remediation="WG-SYS-005.sh",
    reads=("pg_file_settings", "pg_config_files", "pg_load_time"),
    scenarios=("archive-mode-off-pending-restart", "config-changed-not-reloaded"),
    rationale="A partial restart: a change applied to the files but not activated takes effect "
    "at some later, unplanned reload or restart, and nobody tested it. pending_restart, "
    "pg_file_settings errors and files changed after the last reload all mean that.",
    detail="the configuration on disk is what runs: no `pending_restart`, no `pg_file_settings` "
    "line in error or unapplied, no configuration file changed since the last reload",
)
def test_configuration_applied(platform: PlatformFacts, pg: Postgres) -> str:
    pending = sorted(s.name for s in pg.settings.values() if s.pending_restart)
    if pending:
        fail(f"setting(s) changed but pending a restart: {', '.join(pending)}")
    cfg = platform.config.get()
    last = {}
    for row in cfg.file_settings:
        last[row.name] = row  # the last entry for a name is the one that counts
    errors = [r for r in cfg.file_settings if r.error]
    if errors:
        fail(
            "configuration file line(s) in error: "
            + "; ".join(f"{r.sourcefile}:{r.sourceline} {r.name}: {r.error}" for r in errors[:5])
        )
    unapplied = [r for r in last.values() if not r.applied and r.name]
    if unapplied:
        fail(
            "configuration line(s) the server cannot apply: "
            + "; ".join(f"{r.sourcefile}:{r.sourceline} {r.name}" for r in unapplied[:5])
        )
    # One second of slack: mtimes and the load time come from the same clock, in whole seconds.
    changed = sorted(f for f, m in cfg.file_mtimes.items() if m > cfg.load_time + 1)
    if changed:
        fail(
            f"configuration file(s) changed after the server last read its configuration "
            f"(reload): {', '.join(changed)}"
        )
    return f"{len(cfg.file_mtimes)} configuration files, none changed since the last reload"


@control(
    "WG-SYS-006",
    "systemd and the server run what is installed (no daemon-reload pending, no deleted binary)",
    severity="high",
    refs=("BSI OPS.1.1.3",),
    remediation="WG-SYS-006.sh",
    reads=("unit", "postgres_exe"),
    scenarios=("unit-changed-no-reload", "server-binary-replaced"),
    rationale="A unit file changed without daemon-reload, or a server binary replaced by an "
    "upgrade while the old one keeps running: the next restart runs something nobody has run.",
    detail="systemd and the server run what is installed: no `NeedDaemonReload`, no deleted "
    "(upgraded) server binary",
)
def test_running_what_is_installed(platform: PlatformFacts, target: Target) -> str:
    unit = platform.unit.get()
    if unit.need_daemon_reload:
        fail(
            f"{unit.id}'s unit file ({unit.fragment_path}) changed on disk without a "
            "systemctl daemon-reload: systemd runs an older definition"
        )
    exe = platform.exe.get()
    if exe.endswith(" (deleted)"):
        fail(
            f"the running server binary {re.sub(r' [(]deleted[)]$', '', exe)} was deleted "
            "(replaced by an upgrade): the server still runs the old version"
        )
    return f"{unit.id} current; running {exe}"
