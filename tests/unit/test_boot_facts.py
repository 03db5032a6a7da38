"""WG-SYS-001's view of boot: the chain of units from the default target down to the cluster,
parsed from what systemd printed on a lab host (Debian 12, PostgreSQL 15) in each state the
lab's scenarios break it into."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.test_platform import _started_at_boot
from walguard.controls import ControlFailed
from walguard.errors import FactUnavailable
from walguard.facts.boot import BootPath, BootUnit, parse_boot, start_conf_path
from walguard.facts.sections import Section

DATA = Path(__file__).parent / "data" / "boot"
SERVICE = "postgresql@15-main.service"


def captured(state: str) -> dict[str, Section]:
    """The file holds `@@ default`, `@@ units` and `@@ start_conf` parts, as the collector's
    boot_default, boot_units and start_conf sections."""
    parts: dict[str, list[str]] = {}
    current = ""
    for line in (DATA / f"{state}.txt").read_text().splitlines():
        if line.startswith("@@ "):
            current = line[3:]
            parts[current] = []
        else:
            parts[current].append(line)
    names = {"default": "boot_default", "units": "boot_units", "start_conf": "start_conf"}
    return {names[k]: Section(names[k], "\n".join(v), 0) for k, v in parts.items()}


def verdict_of(sections: dict[str, Section]) -> str:
    try:
        return "PASS " + _started_at_boot(parse_boot(sections), SERVICE)
    except ControlFailed as exc:
        return f"FAIL {exc}"


def verdict(state: str) -> str:
    return verdict_of(captured(state))


def test_pristine_debian_cluster_is_started_by_the_generator_under_postgresql_service() -> None:
    boot = parse_boot(captured("pristine"))
    assert boot.default_target == "graphical.target"
    chain = boot.chain(SERVICE)
    assert chain == (SERVICE, "postgresql.service", "multi-user.target", "graphical.target")
    assert boot.generated_by_debian(SERVICE, chain)
    assert verdict("pristine") == (
        "PASS started at boot by graphical.target <- multi-user.target <- postgresql.service "
        "(enabled) <- postgresql@15-main.service (enabled-runtime, Debian's generator: "
        "start.conf auto)"
    )


def test_a_disabled_parent_is_not_started_at_boot_though_the_cluster_reads_enabled_runtime() -> (
    None
):
    boot = parse_boot(captured("parent-disabled"))
    assert boot.units[SERVICE].unit_file_state == "enabled-runtime"  # what fooled the old check
    assert boot.chain(SERVICE) == ()
    assert verdict("parent-disabled") == (
        "FAIL postgresql@15-main.service is active but nothing starts it at boot: the units that "
        "pull it in stop at postgresql.service (disabled), not the default target "
        "graphical.target: `systemctl enable postgresql.service`"
    )


def test_a_parent_enabled_only_at_runtime_does_not_survive_a_reboot() -> None:
    assert verdict("enabled-runtime").startswith(
        "FAIL postgresql.service is enabled-runtime: its link does not survive a reboot"
    )
    assert "`systemctl enable postgresql.service`" in verdict("enabled-runtime")


def test_start_conf_manual_is_named() -> None:
    assert verdict("start-conf-manual").startswith(
        "FAIL postgresql@15-main.service is active but its cluster's start.conf says 'manual'"
    )


def test_a_unit_enabled_at_runtime_by_hand_is_not_the_generator() -> None:
    # The same cluster link, but no start.conf to vouch for the generator (not Debian's layout).
    sections = captured("pristine")
    del sections["start_conf"]
    assert verdict_of(sections).startswith(
        "FAIL postgresql@15-main.service is enabled-runtime: its link does not survive a reboot"
    )


def test_unreadable_sections_are_errors_never_a_pass() -> None:
    sections = captured("pristine")
    sections["boot_units"] = Section("boot_units", "Failed to connect to bus", 1)
    with pytest.raises(FactUnavailable):
        parse_boot(sections)
    sections = captured("pristine")
    del sections["boot_default"]
    with pytest.raises(FactUnavailable):
        parse_boot(sections)


def test_start_conf_path_for_debian_clusters_only() -> None:
    assert start_conf_path(SERVICE) == "/etc/postgresql/15/main/start.conf"
    assert start_conf_path("postgresql@16-my-cluster.service") == (
        "/etc/postgresql/16/my-cluster/start.conf"
    )
    assert start_conf_path("postgresql-15.service") is None  # RHEL's versioned unit
    assert start_conf_path("postgresql@15-../../x.service") is None


def test_rhel_versioned_unit_enabled_persistently_passes() -> None:
    boot = BootPath(
        "multi-user.target",
        {
            "postgresql-15.service": _unit("postgresql-15.service", "enabled", "multi-user.target"),
            "multi-user.target": _unit("multi-user.target", "static", ""),
        },
        None,
    )
    assert _started_at_boot(boot, "postgresql-15.service") == (
        "started at boot by multi-user.target <- postgresql-15.service (enabled)"
    )


def _unit(name: str, state: str, by: str) -> BootUnit:
    return BootUnit(name, state, tuple(by.split()))
