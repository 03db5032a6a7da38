"""When a booted container host is ready: sshd answers, and on a database host PostgreSQL has
archived a segment, chronyd is synchronised and no unit failed while booting (a probe host:
sshd and chronyd). A host that booted with a failed unit raises BootFailed, with its journal."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from walguard.lab import settings
from walguard.lab.errors import LabError
from walguard.lab.host_exec import exec_in, psql

if TYPE_CHECKING:
    from walguard.lab.container import Container

BOOT_TIMEOUT_S = 90


class BootFailed(LabError):
    """The host came up, but not clean: a unit failed while it booted."""


def wait_ready(host: Container, timeout: float = BOOT_TIMEOUT_S) -> None:
    """Wait until sshd answers and PostgreSQL has archived at least one segment (a probe host:
    sshd and chronyd)."""
    deadline = time.monotonic() + timeout
    if host.is_probe:
        _wait_units(host, ["ssh.service", "chrony.service"], deadline, timeout)
        return
    while True:
        if not host.running():
            raise LabError(f"{host.name} stopped while booting: {host.evidence()}")
        if _port_open(host.address, 22) and host.leader_pid() is not None:
            # PostgreSQL answers two seconds before its unit is active: Debian's pg_ctlcluster
            # then polls it three times, 0.5 s apart. The switch and the base backup below
            # (which itself waits a second for the archiver) fill that time; the end of the
            # boot (is-system-running, below) still waits for the unit.
            ssh_active = ["systemctl", "is-active", "ssh.service"]
            active = exec_in(host, ssh_active, check=False).stdout.split() == ["active"]
            pg_isready = ["runuser", "-u", "postgres", "--", "pg_isready", "-q"]
            if active and exec_in(host, pg_isready, check=False).returncode == 0:
                (host.dir / "leader.pid").write_text(f"{host.leader_pid()}\n")
                break
        if time.monotonic() > deadline:
            raise LabError(f"{host.name} did not become ready within {timeout:.0f} s")
        time.sleep(0.3)
    # A fresh host has archived nothing yet: write a commit record and switch, so the pristine
    # state is a healthy archiver (archived_count >= 1).
    sql = "SELECT txid_current(); SELECT pg_switch_wal();"
    psql(host, sql)
    while psql(host, "SELECT archived_count FROM pg_stat_archiver").strip() in ("", "0"):
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: PostgreSQL archived nothing within {timeout:.0f} s")
        time.sleep(0.3)
    _base_backup(host, deadline, timeout)
    # The pristine clock is synchronised (to probe-a): wait for chronyd's first measurements.
    while "Leap status     : Normal" not in _tracking(host):
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: chronyd not synchronised within {timeout:.0f} s")
        time.sleep(0.3)
    # A pristine host has no failed unit: the audit's WG-SYS-003 would fail on it, and every
    # test that expects a clean host with it. Say which unit, and why, where it happens.
    failed = _failed_units(host, deadline)
    if failed:
        raise BootFailed(f"{host.name} booted with failed unit(s): {failed}")


# A bank host has a recent base backup (WG-RST-001): taken here, once PostgreSQL archives, as its
# backup job would (-X none: the WAL it needs is the archive's, as pg_verifybackup then checks).
# The restore drill's scratch directory is root's, as an operator would make it.
BASE_BACKUP = f"""install -d -o root -g root -m 0755 {settings.SCRATCH_DIR}
install -d -o postgres -g postgres -m 0700 {settings.BACKUP_DIR}
[ -z "$(ls -A {settings.BACKUP_DIR})" ] || exit 0
exec runuser -u postgres -- pg_basebackup -D "{settings.BACKUP_DIR}/$(date -u +%Y%m%dT%H%M%SZ)" \\
  -X none -c fast --no-sync -l 'walguard lab base backup'
"""


def _base_backup(host: Container, deadline: float, timeout: float) -> None:
    left = max(deadline - time.monotonic(), 5)
    done = exec_in(host, ["/bin/sh", "-c", BASE_BACKUP], check=False, timeout=left)
    if done.returncode != 0:
        raise LabError(
            f"{host.name}: the base backup failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-300:]}"
        )


def _failed_units(host: Container, deadline: float) -> str:
    """The units that failed during boot, with their journal; "" when there are none."""
    left = max(1, int(deadline - time.monotonic()))
    # --wait: until the boot has finished, so that a unit failing late is seen too.
    wait = ["timeout", str(left), "systemctl", "is-system-running", "--wait"]
    if exec_in(host, wait, check=False).stdout.strip() == "running":
        return ""
    listed = ["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"]
    units = [ln.split()[0] for ln in exec_in(host, listed, check=False).stdout.splitlines() if ln]
    if not units:
        return ""
    report = [host.name + ": failed during boot: " + " ".join(units)]
    for unit in units:
        journal = ["journalctl", "-b", "-u", unit, "--no-pager", "-q", "-n", "30"]
        report.append(exec_in(host, journal, check=False).stdout.rstrip())
    (host.dir / "boot-failures.log").write_text("\n".join(report) + "\n")
    return f"{' '.join(units)} (journal in {host.dir / 'boot-failures.log'}): " + report[-1][-600:]


def _tracking(host: Container) -> str:
    return exec_in(host, ["chronyc", "-n", "tracking"], check=False).stdout


def _wait_units(host: Container, units: list[str], deadline: float, timeout: float) -> None:
    while True:
        if not host.running():
            raise LabError(f"{host.name} stopped while booting")
        if _port_open(host.address, 22) and host.leader_pid() is not None:
            states = exec_in(host, ["systemctl", "is-active", *units], check=False).stdout.split()
            if states == ["active"] * len(units):
                (host.dir / "leader.pid").write_text(f"{host.leader_pid()}\n")
                return
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: {', '.join(units)} not active within {timeout:.0f} s")
        time.sleep(0.3)


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False
