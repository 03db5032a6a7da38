"""The lab hosts are real: strict SSH, PostgreSQL archiving to /pg_archive, zones, lifecycle."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.support import Lab
from walguard.lab import hosts, labhost, settings

pytestmark = pytest.mark.lab


def _ssh_with_known_hosts(host: hosts.Host, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        "ssh",
        "-i",
        str(labhost.lab_key()),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        f"{settings.AUDIT_USER}@{host.address}",
        "hostname",
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_ssh_strict_host_key_checking_accepts_the_recorded_key(lab: Lab) -> None:
    for host in lab.hosts:
        done = _ssh_with_known_hosts(host, labhost.known_hosts_path())
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == host.name


def test_ssh_refuses_an_unknown_host_key(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    done = _ssh_with_known_hosts(lab.hosts[0], empty)
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr


def test_ssh_refuses_a_different_key_for_the_host(lab: Lab, tmp_path: Path) -> None:
    # db2's key recorded under db1's address: a man in the middle, as ssh sees it.
    wrong = tmp_path / "known_hosts"
    key = (lab.hosts[1].dir / "host_key.pub").read_text().split()[:2]
    wrong.write_text(f"{lab.hosts[0].address} {key[0]} {key[1]}\n")
    done = _ssh_with_known_hosts(lab.hosts[0], wrong)
    assert done.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr


def test_each_host_has_its_own_identity_and_listeners(lab: Lab) -> None:
    seen_keys = set()
    for host in lab.hosts:
        out = lab.ssh(host, "hostname; ip -4 -o addr show host0; ss -tlnH").stdout
        assert out.splitlines()[0] == host.name
        assert f"inet {host.address}/24" in out
        # Only this host's own listeners: sshd and PostgreSQL on loopback and its own address.
        assert f"{host.address}:5432" in out
        others = [h.address for h in lab.hosts if h != host]
        assert not any(f"{addr}:" in out for addr in others)
        seen_keys.add((host.dir / "host_key.pub").read_text().split()[1])
    assert len(seen_keys) == len(lab.hosts)


def test_audit_user_is_not_root_and_has_sudo_and_pg_monitor(lab: Lab) -> None:
    host = lab.hosts[0]
    out = lab.ssh(
        host,
        "id -u; sudo -n id -u; psql -XAt -d postgres -c "
        "\"SELECT current_user, pg_has_role('pg_monitor', 'member')\"",
    ).stdout
    assert out.split() == ["1000", "0", "walguard|t"]


def test_archive_is_a_dedicated_volume_owned_by_postgres(lab: Lab) -> None:
    out = lab.ssh(lab.hosts[0], "findmnt -n -o FSTYPE /pg_archive; stat -c '%U:%G %a' /pg_archive")
    assert out.stdout.split("\n")[:2] == ["ext4", "postgres:postgres 750"]


def test_postgresql_answers_with_the_archive_settings(lab: Lab) -> None:
    sql = (
        "SELECT name || '=' || setting FROM pg_settings WHERE name IN "
        "('archive_mode', 'archive_command', 'archive_timeout', 'wal_level') ORDER BY name"
    )
    out = lab.ssh(lab.hosts[0], f'psql -XAt -d postgres -c "{sql}"').stdout.splitlines()
    assert out == [
        "archive_command=test -f /pg_archive/%f || cp %p /pg_archive/%f",
        "archive_mode=on",
        "archive_timeout=60",
        "wal_level=replica",
    ]


def test_switched_segment_reaches_the_archive_and_pg_stat_archiver(lab: Lab) -> None:
    host = lab.hosts[1]
    switch = (
        "sudo -n -u postgres psql -XAtq -c 'SELECT txid_current()' "
        "-c 'SELECT pg_walfile_name(pg_switch_wal())'"
    )
    segment = lab.ssh(host, switch).stdout.split()[-1]
    assert len(segment) == 24
    deadline = time.monotonic() + 30
    last = ""
    while time.monotonic() < deadline:
        last = lab.ssh(
            host, "psql -XAt -d postgres -c 'SELECT last_archived_wal FROM pg_stat_archiver'"
        ).stdout.strip()
        if last >= segment:
            break
        time.sleep(0.5)
    assert last >= segment, f"{segment} not archived within 30 s (last archived: {last!r})"
    size = lab.ssh(host, f"sudo -n stat -c %s /pg_archive/{segment}").stdout.strip()
    assert size == str(16 * 1024 * 1024)


def _connect_from_zone(netns: str, address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "nc", "-z", "-v", "-w", "3", address, "5432"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_zone_a_reaches_postgres_and_zone_b_is_refused(lab: Lab) -> None:
    zone_a, zone_b = settings.ZONES
    for host in lab.hosts:
        assert _connect_from_zone(zone_a.netns, host.address).returncode == 0
        refused = _connect_from_zone(zone_b.netns, host.address)
        assert refused.returncode == 1
        assert "refused" in refused.stderr


def test_zones_have_no_route_off_the_lab(lab: Lab) -> None:
    for zone in settings.ZONES:
        routes = subprocess.run(
            ["ip", "-n", zone.netns, "route", "show"], capture_output=True, text=True, check=True
        ).stdout
        assert "default" not in routes
    for host in lab.hosts[:1]:
        assert "default" not in lab.ssh(host, "ip route show").stdout


def test_up_twice_is_a_no_op(lab: Lab) -> None:
    pids = [h.nspawn_pid() for h in lab.hosts]
    done = lab.walguard("lab", "up", "--hosts", str(len(lab.hosts)))
    assert "nothing to do" in done.stderr
    assert [h.nspawn_pid() for h in lab.hosts] == pids


def test_status_lists_hosts_and_zones(lab: Lab) -> None:
    out = lab.walguard("lab", "status").stdout
    for host in lab.hosts:
        assert f"{host.name}" in out and host.address in out
    assert "zone-a" in out and "zone-b" in out


def test_lab_ssh_runs_a_command_and_rejects_unknown_hosts(lab: Lab) -> None:
    assert lab.walguard("lab", "ssh", "db1", "--", "hostname").stdout.strip() == "db1"
    bad = lab.walguard("lab", "ssh", "db99", "--", "true", check=False)
    assert bad.returncode == 8  # walguard.exit_codes: the lab command failed
    assert "unknown or stopped lab host 'db99'" in bad.stderr and "db1, db2, db3" in bad.stderr


def test_a_host_with_a_failed_unit_is_booted_once_more_and_the_journal_kept(lab: Lab) -> None:
    """What `lab up` and `lab scenario reset` do when a host comes up with a failed unit (CI saw
    systemd-sysusers.service fail at a boot): the host is booted again from scratch, the failed
    unit's journal is kept, and the host is pristine afterwards."""
    from walguard.lab import image

    db3 = lab.hosts[2]
    log = hosts.Host(db3.name).dir / "boot-failures.log"
    log.unlink(missing_ok=True)
    lab.walguard("lab", "scenario", "apply", db3.name, "failed-unit")
    try:
        hosts.ready_or_boot_again(hosts.Host(db3.name), image.ensure_image())
        kept = log.read_text()
        assert f"{db3.name}: failed during boot:" in kept and ".service" in kept
        failed = hosts.exec_in(hosts.Host(db3.name), ["systemctl", "--failed", "--plain",
                                                      "--no-legend"], check=False)  # fmt: skip
        assert failed.stdout.strip() == ""
    finally:
        lab.reset_applied()
        log.unlink(missing_ok=True)
