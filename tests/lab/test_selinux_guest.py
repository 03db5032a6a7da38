"""The SELinux guest selinux1 (a Debian 12 VM under QEMU): enforcing, PostgreSQL confined as
postgresql_t, and the seed's story end to end: the unlabelled /pg_archive makes archiving fail
with Permission denied and an AVC denial, until `semanage fcontext` + `restorecon` label it; a
reset brings the unlabelled archive back.

The `guest` fixture (conftest.py) boots the guest once for this module and test_selinux_audit.py,
whose tests are a stream of their own beside the database hosts' (its own worker, its own
inventory: the other lab tests never see an extra host in theirs). The tests run in file order:
the archive is broken, then fixed, then reset, which leaves the guest pristine for
test_selinux_audit.py. The test of `lab up --selinux` rewrites the lab's inventory: it runs at
the end of the database hosts' stream, alone.

Every SSH command of these tests goes through one master connection (an SSH login costs the
emulated guest about a second; a command over the open connection a fraction of that), and
waits poll every half second: the guest is slow, so the tests do not add to it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.guest_support import Guest
from tests.lab.support import Lab
from walguard.inventory.load import load_inventory
from walguard.lab import labhost, manage, selinux_guest, settings

pytestmark = pytest.mark.lab


def _unlabelled(context: str) -> bool:
    return ":unlabeled_t:" in context or ":default_t:" in context


def test_ssh_with_strict_host_key_checking(guest: Guest, tmp_path: Path) -> None:
    assert guest.ssh("hostname").stdout.strip() == selinux_guest.NAME
    recorded = labhost.known_hosts_path().read_text()
    assert f"{selinux_guest.NAME},{selinux_guest.ADDRESS} ssh-ed25519 " in recorded
    # The same login against a known_hosts with another key for the guest must be refused.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{selinux_guest.ADDRESS} {key}\n")
    done = subprocess.run(
        selinux_guest.ssh_argv(["true"], known_hosts=wrong),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in done.stderr


def test_selinux_is_enforcing(guest: Guest) -> None:
    assert guest.ssh("/usr/sbin/getenforce").stdout.strip() == "Enforcing"
    status = guest.ssh("/usr/sbin/sestatus").stdout
    assert "Current mode:                   enforcing" in status
    assert "Mode from config file:          enforcing" in status
    assert "Loaded policy name:             default" in status
    assert guest.ssh("test -e /.autorelabel", check=False).returncode == 1


def test_postgres_runs_confined(guest: Guest) -> None:
    lines = [ln for ln in guest.ssh("ps -eZ").stdout.splitlines() if ln.endswith(" postgres")]
    assert len(lines) >= 3, lines
    assert all(ln.startswith("system_u:system_r:postgresql_t:") for ln in lines), lines
    active = guest.ssh(f"systemctl is-active {selinux_guest.POSTGRES_SERVICE} auditd.service")
    assert active.stdout.split() == ["active", "active"]


def test_archive_is_a_mount_without_labels(guest: Guest) -> None:
    assert guest.ssh("findmnt -no SOURCE,FSTYPE /pg_archive").stdout.split() == ["/dev/vdb", "ext4"]
    context, owner, group, mode = guest.ssh("stat -c '%C %U %G %a' /pg_archive").stdout.split()
    assert _unlabelled(context), context
    assert (owner, group, mode) == ("postgres", "postgres", "750")
    settings_out = guest.psql("SHOW archive_command")
    assert settings_out.strip() == "test -f /pg_archive/%f || cp %p /pg_archive/%f"


def test_archiving_is_denied_until_the_archive_is_labelled(guest: Guest) -> None:
    before = guest.archiver()
    denials_before = len(guest.avc_denials())
    segment = guest.switch_wal()
    guest.wait_for(
        "a failed archive attempt",
        lambda: int(guest.archiver()["failed_count"]) > int(before["failed_count"]),
    )
    assert guest.archiver()["archived_count"] == "0"
    guest.wait_for("an AVC denial for postgresql_t", lambda: guest.avc_denials()[denials_before:])
    denial = guest.avc_denials()[-1]
    assert "scontext=system_u:system_r:postgresql_t:s0" in denial
    assert "tcontext=system_u:object_r:unlabeled_t:s0" in denial or ":default_t:" in denial
    log = guest.ssh("sudo -n tail -n 200 /var/log/postgresql/postgresql-15-main.log").stdout
    assert "Permission denied" in log
    assert "archive command failed" in log

    # The seed's fix: label the archive as PostgreSQL data, persistently, then relabel it.
    guest.ssh("sudo -n semanage fcontext -a -t postgresql_db_t '/pg_archive(/.*)?'")
    relabel = guest.ssh("sudo -n restorecon -Rv /pg_archive").stdout
    assert "Relabeled /pg_archive from system_u:object_r:unlabeled_t:s0" in relabel
    assert "to system_u:object_r:postgresql_db_t:s0" in relabel
    assert ":postgresql_db_t:" in guest.ssh("stat -c %C /pg_archive").stdout
    assert ":postgresql_db_t:" in guest.ssh("/usr/sbin/matchpathcon /pg_archive").stdout

    fixed = guest.switch_wal()
    assert fixed > segment
    guest.wait_for(f"archiving of {fixed}", lambda: guest.archiver()["last_archived_wal"] >= fixed)
    stored = guest.ssh(f"sudo -n stat -c %C /pg_archive/{fixed}").stdout
    assert ":postgresql_db_t:" in stored


@pytest.mark.lab_exclusive  # it rewrites the lab's inventory: last, and alone (conftest.py)
def test_up_with_selinux_lists_the_guest_without_booting_it_again(lab: Lab) -> None:
    manage.boot_guest()  # running since the guest's stream; booted here when run on its own
    pid = selinux_guest.qemu_pid()
    try:
        started = time.monotonic()
        done = lab.walguard("lab", "up", "--hosts", str(len(lab.hosts)), "--selinux")
        assert "nothing to do" in done.stderr
        assert selinux_guest.qemu_pid() == pid
        assert time.monotonic() - started < 60
        targets = {t.name: t for t in load_inventory(settings.INVENTORY_PATH)}
        target = targets[selinux_guest.NAME]
        # On the lab bridge like the nspawn hosts: the zones' probe hosts reach it there too.
        assert (target.address, target.port) == (selinux_guest.ADDRESS, 22)
        assert target.vars["walguard_selinux_required"] is True
        assert target.vars["walguard_postgres_service"] == "postgresql@15-main.service"
        doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
        assert selinux_guest.NAME not in doc["all"]["children"]["lab"]["hosts"]
        status = lab.walguard("lab", "status").stdout.splitlines()
        line = next(ln for ln in status if ln.startswith(f"{selinux_guest.NAME} "))
        assert line.endswith(" running"), line
        done = lab.walguard("lab", "ssh", selinux_guest.NAME, "--", "hostname")
        assert done.stdout.strip() == selinux_guest.NAME
    finally:
        # The lab as the database hosts' tests expect it: no guest, none in the inventory.
        lab.walguard("lab", "up", "--hosts", str(len(lab.hosts)))
    assert not selinux_guest.running()


def test_reset_brings_the_unlabelled_archive_back(guest: Guest) -> None:
    pid = selinux_guest.qemu_pid()
    started = time.monotonic()
    guest.reset()
    took = time.monotonic() - started
    # The pristine snapshot was loaded into the same QEMU, no boot (about a minute under TCG).
    assert selinux_guest.qemu_pid() == pid
    assert took < 45, took
    assert _unlabelled(guest.ssh("stat -c %C /pg_archive").stdout)
    assert "pg_archive" not in guest.ssh("sudo -n semanage fcontext -l -C").stdout
    assert guest.ssh("sudo -n ls -A /pg_archive").stdout.split() == ["lost+found"]
    assert guest.archiver()["archived_count"] == "0"
