"""What the validation matrix's controls conclude: judged by the one judge on a lab host's real
collector output (tests/unit/data/platform/), changed one fact at a time the way the lab's
scenarios change the host."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from tests.unit.test_archive_truth import pg
from tests.unit.test_platform_facts import pristine, with_section
from walguard.controls import FUNCTIONS, load_all
from walguard.facts.host import HostFacts
from walguard.facts.network import ANSWERED_TLS, REFUSED, TLS_FAILED, UNKNOWN, ZoneAttempt
from walguard.facts.platform import ConfigState, FileSetting, PlatformFacts, parse_platform
from walguard.facts.postgres_state import Setting
from walguard.history.journal_baseline import Baseline
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.part import Part
from walguard.policy.model import Policy

load_all()
ZONES = (("zone-a", True), ("zone-b", False))
GOOD_ZONES = {
    "zone-a": ZoneAttempt("zone-a", "probe-a", ANSWERED_TLS, "fe_sendauth: no password supplied"),
    "zone-b": ZoneAttempt("zone-b", "probe-b", REFUSED, "Connection refused"),
}


def server(**settings: str) -> Any:
    p = pg(version="15.18")
    merged = dict(p.settings)
    merged["ssl"] = Setting("ssl", settings.pop("ssl", "on"), False, "configuration file")
    for name, value in settings.items():
        merged[name] = Setting(name, value, True, "configuration file")  # pending a restart
    return dataclasses.replace(p, settings=MappingProxyType(merged))


def verdict(
    control: str,
    platform: PlatformFacts | None = None,
    *,
    policy: Policy | None = None,
    zones: dict[str, ZoneAttempt] | None = None,
    postgres: Any = None,
    address: str = "10.231.0.11",
) -> Any:
    facts = HostFacts(
        "db1",
        address,
        True,
        None,
        Part(error="not needed"),
        Part(postgres or server()),
        Part("active"),
        2,
        platform=platform or parse_platform(pristine()),
        zones=Part(GOOD_ZONES if zones is None else zones),
    )
    policy = policy or Policy(zones=ZONES, tls_ca_file=None)
    target = Target("db1", address, 22, None, None, False, (), MappingProxyType({}), policy=policy)
    return judge(FUNCTIONS[control], facts, target)


HOST_ONLY = ["WG-SYS-001", "WG-SYS-002", "WG-SYS-003", "WG-SYS-005", "WG-SYS-006", "WG-NET-001",
             "WG-NET-002", "WG-NET-003", "WG-NET-004", "WG-IDN-001", "WG-IDN-002"]  # fmt: skip


@pytest.mark.parametrize("control", HOST_ONLY)
def test_the_pristine_lab_host_passes(control: str) -> None:
    v = verdict(control)
    assert v.result == "PASS", v.message


def test_journal_errors_are_judged_against_the_previous_run_or_the_noise_list_alone() -> None:
    p = parse_platform(pristine())
    # Nobody looked up the previous run: nothing to judge against, never a pass.
    unknown = verdict("WG-SYS-004", p)
    assert unknown.result == "ERROR" and "not looked up" in unknown.message
    alone = dataclasses.replace(p, journal_baseline=Part(Baseline(None, None, "no verified run")))
    v = verdict("WG-SYS-004", alone)
    assert v.result == "FAIL" and "kex_exchange_identification" in v.message
    assert "(no verified run)" in v.message
    noisy = verdict("WG-SYS-004", alone, policy=Policy(zones=ZONES, journal_noise=("kex_",)))
    assert noisy.result == "PASS"
    line = p.journal.get()[0].replace("sshd[80]", "sshd[81]").replace("01:40:58", "02:00:00")
    later = dataclasses.replace(p, journal_baseline=Part(Baseline((line,), "R1")))
    same = verdict("WG-SYS-004", later)
    assert same.result == "PASS" and same.message.endswith("(compared with run R1)")
    fresh = dataclasses.replace(p, journal_baseline=Part(Baseline((), "R1")))
    v = verdict("WG-SYS-004", fresh)
    assert v.result == "FAIL" and v.message.startswith(
        "1 new journal error(s) (compared with run R1)"
    )


@pytest.mark.parametrize(
    ("control", "section", "output", "rc", "expected"),
    [
        ("WG-NET-001", "listeners",
         'tcp LISTEN 0 244 0.0.0.0:5432 0.0.0.0:* users:(("postgres",pid=55,fd=6))', 0,
         "every address"),
        ("WG-NET-001", "listeners",
         'tcp LISTEN 0 5 10.231.0.11:5432 0.0.0.0:* users:(("pgbouncer",pid=9,fd=6))', 0,
         "also listened on by pgbouncer"),
        ("WG-NET-002", "listeners",
         'tcp LISTEN 0 5 10.231.0.11:6543 0.0.0.0:* users:(("perl",pid=118,fd=3))', 0,
         "perl on tcp 10.231.0.11:6543"),
        ("WG-NET-003", "nft_ruleset", "", 0, "no ruleset filters input"),
        ("WG-NET-003", "nft_ruleset",
         "table inet t {\n\tchain input {\n\t\ttype filter hook input priority filter; "
         "policy accept;\n\t}\n}", 0, "accept everything"),
        ("WG-IDN-001", "chrony_tracking",
         "Reference ID    : 0AE70102 (10.231.1.2)\nSystem time     : 0.250000000 seconds slow of "
         "NTP time\nLeap status     : Normal", 0, "exceeds the policy's 100 ms"),
        ("WG-IDN-001", "chrony_tracking",
         "Reference ID    : 00000000 ()\nSystem time     : 0.000000000 seconds slow of NTP time"
         "\nLeap status     : Not synchronised", 0, "not synchronised"),
        ("WG-IDN-001", "chrony_tracking",
         "Reference ID    : 7F7F0101 ()\nSystem time     : 0.000000000 seconds slow of NTP time"
         "\nLeap status     : Normal", 0, "only to this host's own clock"),
        ("WG-IDN-002", "identity", "name db1\nfqdn db1\nforward 127.0.1.1\n"
         "reverse 127.0.1.1 db1", 0, "not an address of this host"),
        ("WG-IDN-002", "identity", "name db1\nfqdn db1\nforward 10.231.0.11\n"
         "reverse 10.231.0.11 db7", 0, "resolves back to db7"),
        ("WG-SYS-001", "unit", "Id=postgresql@15-main.service\nLoadState=loaded\n"
         "ActiveState=failed\nSubState=failed\nUnitFileState=enabled-runtime", 0, "is failed"),
        ("WG-SYS-002", "postgres_package", "postgresql-15|16.4-1|ii |dpkg", 0,
         "does not allow (15.*)"),
        ("WG-SYS-003", "failed_units",
         "walguard-lab-broken.service loaded failed failed walguard lab", 0,
         "walguard-lab-broken.service"),
        ("WG-SYS-006", "postgres_exe", "/usr/lib/postgresql/15/bin/postgres (deleted)", 0,
         "was deleted"),
    ],
)  # fmt: skip
def test_one_broken_fact_fails_its_control(
    control: str, section: str, output: str, rc: int, expected: str
) -> None:
    v = verdict(control, parse_platform(with_section(section, output, rc)))
    assert v.result == "FAIL", v
    assert expected in v.message


def test_an_unreadable_section_is_an_error_never_a_pass() -> None:
    pairs = [
        ("WG-NET-001", "listeners"),
        ("WG-SYS-001", "unit"),
        ("WG-IDN-002", "identity"),
        ("WG-SYS-005", "pg_file_settings"),
    ]
    for control, section in pairs:
        v = verdict(control, parse_platform(with_section(section, "Permission denied", 1)))
        assert v.result == "ERROR", (control, v)


def test_configuration_not_active() -> None:
    p = parse_platform(pristine())
    cfg = p.config.get()
    assert verdict("WG-SYS-005", postgres=server(shared_buffers="256MB")).message.startswith(
        "setting(s) changed but pending a restart: shared_buffers"
    )
    bad = FileSetting(99, "/etc/x.conf", 3, "work_mem", False, "setting could not be applied")
    errored = dataclasses.replace(
        p, config=Part(ConfigState(cfg.load_time, (*cfg.file_settings, bad), cfg.file_mtimes))
    )
    assert "/etc/x.conf:3 work_mem" in verdict("WG-SYS-005", errored).message
    newer = {**cfg.file_mtimes, "/etc/x.conf": cfg.load_time + 60}
    changed = dataclasses.replace(
        p, config=Part(ConfigState(cfg.load_time, cfg.file_settings, newer))
    )
    v = verdict("WG-SYS-005", changed)
    assert v.result == "FAIL" and "changed after the server last read" in v.message


@pytest.mark.parametrize(
    ("zones", "policy_zones", "result", "fragment"),
    [
        (GOOD_ZONES, (("zone-a", True),), "FAIL", "1 zone(s) in the policy"),
        ({"zone-a": GOOD_ZONES["zone-a"]}, ZONES, "FAIL", "no probe host (walguard_zone)"),
        ({**GOOD_ZONES, "zone-b": ZoneAttempt("zone-b", "probe-b", ANSWERED_TLS, "x")}, ZONES,
         "FAIL", "zone-b must be refused"),
        ({**GOOD_ZONES, "zone-a": ZoneAttempt("zone-a", "probe-a", REFUSED, "refused")}, ZONES,
         "FAIL", "zone-a must reach PostgreSQL but was refused"),
        ({**GOOD_ZONES, "zone-a": ZoneAttempt("zone-a", "probe-a", TLS_FAILED, "cert")}, ZONES,
         "FAIL", "TLS verification failed"),
        ({**GOOD_ZONES, "zone-b": ZoneAttempt("zone-b", "probe-b", UNKNOWN, "ssh: timeout")},
         ZONES, "ERROR", "could not tell"),
    ],
)  # fmt: skip
def test_zone_reachability(
    zones: dict[str, ZoneAttempt], policy_zones: Any, result: str, fragment: str
) -> None:
    v = verdict("WG-NET-004", zones=zones, policy=Policy(zones=policy_zones))
    assert (v.result, fragment in v.message) == (result, True), v


def test_tls_off_is_not_applicable_unless_required_and_no_ca_cannot_pass() -> None:
    off = parse_platform(with_section("tls_cert", "ssl off"))
    assert verdict("WG-IDN-003", off, postgres=server(ssl="off")).result == "NOT APPLICABLE"
    required = Policy(zones=ZONES, tls_required=True)
    v = verdict("WG-IDN-003", off, postgres=server(ssl="off"), policy=required)
    assert v.result == "FAIL" and "policy requires it" in v.message
    v = verdict("WG-IDN-003")
    assert v.result == "ERROR" and "policy names no CA" in v.message


def test_no_ntp_client_fails_and_a_silent_one_cannot_pass() -> None:
    sections = with_section("chrony_tracking", "506 Cannot talk to daemon", 1)
    v = verdict("WG-IDN-001", parse_platform(sections))
    assert v.result == "ERROR" and "cannot read the offset of chrony.service" in v.message
    sections["time_units"] = dataclasses.replace(
        sections["time_units"], output="inactive\ninactive\ninactive\ninactive\ninactive", rc=3
    )
    v = verdict("WG-IDN-001", parse_platform(sections))
    assert v.result == "FAIL" and "no NTP client is running" in v.message
