"""Lab hosts: Debian 12 systemd-nspawn containers booted with real systemd, each on its own
copy-on-write layer over the cached image, with its own /pg_archive volume (a loop-mounted ext4).

Per host, under STATE_DIR/hosts/NAME/:
  template/  the host's pristine overlay layer (hostname, address, host key, audit key)
  upper/ work/ merged/   the running overlay
  pg_archive.img         the dedicated archive volume
  nspawn.pid, console.log
A reset throws away upper/ and the archive volume and boots again from template/: the host is
pristine in seconds without rebuilding anything.

This module holds the host and its lifecycle (start, stop, reset, destroy). What it is made of
is in host_mounts (overlay, archive volume), host_template and host_postgres (its own layer);
host_ready waits for a booted host, host_exec runs commands in it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from walguard.lab import image, settings
from walguard.lab.host_exec import exec_in as exec_in  # manage and the lab tests use it from here
from walguard.lab.host_mounts import (
    any_mounted,
    is_mounted,
    make_archive_volume,
    mount_archive_volume,
    mount_overlay,
    unmount_all,
)
from walguard.lab.host_ready import BOOT_TIMEOUT_S as BOOT_TIMEOUT_S  # manage reads it here
from walguard.lab.host_ready import BootFailed, wait_ready
from walguard.lab.host_template import make_template
from walguard.lab.labhost import console_tail, pid_from_file, ssh_argv
from walguard.lab.proc import run


@dataclass(frozen=True)
class Host:
    """A lab host in a container: a database host (dbN, on the bridge) or a zone's probe host
    (probe-a, probe-b: inside the zone's network namespace; sshd, psql and chrony, no cluster)."""

    name: str

    @property
    def address(self) -> str:
        return settings.host_address(self.name)

    @property
    def zone(self) -> settings.Zone | None:
        return settings.zone_of(self.name)

    @property
    def is_probe(self) -> bool:
        return self.zone is not None

    # The lab host interface (walguard.lab.labhost.LabHost); the work is in this module's
    # functions, which take the host.
    @property
    def ssh_port(self) -> int:
        return 22

    def start(self) -> None:
        start(self, image.ensure_image())

    def wait_ready(self) -> None:
        wait_ready(self)

    def stop(self) -> None:
        stop(self)

    def reset(self) -> None:
        reset(self, image.ensure_image(progress=True))

    def destroy(self) -> None:
        destroy(self)

    def known_hosts_lines(self) -> list[str]:
        key_type, key_b64 = (self.dir / "host_key.pub").read_text().split()[:2]
        return [f"{self.name},{self.address} {key_type} {key_b64}\n"]

    def ssh_argv(self, command: list[str]) -> list[str]:
        return ssh_argv(self.address, command)

    def run_as_root(self, argv: list[str], input_text: str) -> subprocess.CompletedProcess[str]:
        return exec_in(self, argv, input_text=input_text, check=False)

    def evidence(self) -> str:
        return console_tail(self.dir / "console.log")

    def record_scenario(self, name: str) -> None:
        with (self.dir / "scenarios").open("a") as f:
            f.write(f"{name}\n")

    def applied_scenarios(self) -> list[str]:
        path = self.dir / "scenarios"
        return path.read_text().split() if path.exists() else []

    @property
    def dir(self) -> Path:
        return settings.STATE_DIR / "hosts" / self.name

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def archive_image(self) -> Path:
        return self.dir / "pg_archive.img"

    @property
    def pid_file(self) -> Path:
        return self.dir / "nspawn.pid"

    def nspawn_pid(self) -> int | None:
        return pid_from_file(self.pid_file, lambda argv: argv[0].endswith(b"systemd-nspawn"))

    def leader_pid(self) -> int | None:
        """PID (on this machine) of the container's init: the descendant that is PID 1 in its own
        PID namespace."""
        root = self.nspawn_pid()
        if root is None:
            return None
        todo = [root]
        while todo:
            pid = todo.pop()
            if _is_pid_ns_init(pid):
                return pid
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
        return None

    def running(self) -> bool:
        return self.nspawn_pid() is not None


def start(host: Host, image: Path) -> None:
    if host.running():
        return
    make_template(host, image)
    upper = host.dir / "upper"
    if not upper.exists():
        run(["cp", "-a", str(host.dir / "template"), str(upper)])
    if not is_mounted(host.merged):
        mount_overlay(host, image, upper=upper)
    if not host.is_probe:
        mount_archive_volume(host)
    console = (host.dir / "console.log").open("ab")
    # A probe host lives in its zone's network namespace; a database host on the lab bridge.
    network = (
        f"--network-namespace-path=/run/netns/{host.zone.netns}"
        if host.zone is not None
        else f"--network-bridge={settings.BRIDGE}"
    )
    proc = subprocess.Popen(
        [
            "systemd-nspawn",
            "--quiet",
            "--keep-unit",
            "--register=no",
            "-D",
            str(host.merged),
            "-M",
            host.name,
            network,
            "--console=read-only",
            "-b",
        ],
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=console,
        start_new_session=True,
    )
    host.pid_file.write_text(f"{proc.pid}\n")
    # Until the child has exec'd, its cmdline is still ours: wait for nspawn to be nspawn.
    deadline = time.monotonic() + 10
    while host.nspawn_pid() is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def _is_pid_ns_init(pid: int) -> bool:
    """Whether a process is PID 1 in its own PID namespace (a container's init)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False


def _wait_gone(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(host: Host, *, clean: bool = True, timeout: float = 20) -> None:
    """Stop the host: a clean poweroff (clean=True) or at once, then release everything it held.

    A reset throws the host's state away, so it does not wait for a clean shutdown (which a
    scenario such as a stopped archiver can stall for minutes).
    """
    pid = host.nspawn_pid()
    leader = host.leader_pid() or _saved_leader(host)
    if pid is not None and clean:
        # nspawn turns SIGTERM into a clean poweroff of the container.
        os.kill(pid, signal.SIGTERM)
        _wait_gone(lambda: host.nspawn_pid() is not None, timeout)
    if leader is not None and _is_pid_ns_init(leader):
        # Killing a PID namespace's init kills every process in it: nothing of the host survives.
        os.kill(leader, signal.SIGKILL)
        _wait_gone(lambda: _is_pid_ns_init(leader), 10)
    if host.nspawn_pid() is not None and not _wait_gone(lambda: host.nspawn_pid() is not None, 10):
        os.kill(pid or 0, signal.SIGKILL)
        _wait_gone(lambda: host.nspawn_pid() is not None, 5)
    host.pid_file.unlink(missing_ok=True)
    (host.dir / "leader.pid").unlink(missing_ok=True)
    veth = f"vb-{host.name}"[:15]
    if Path("/sys/class/net", veth).exists():
        run(["ip", "link", "del", veth], check=False)
    unmount_all(host)


def _saved_leader(host: Host) -> int | None:
    try:
        return int((host.dir / "leader.pid").read_text())
    except (OSError, ValueError):
        return None


def leftovers(host: Host) -> bool:
    """Anything of this host still holding resources (for a clean `down`)."""
    return host.running() or any_mounted(host)


def _fresh_boot(host: Host, image: Path) -> None:
    """Boot from a fresh overlay layer (from the template) and a fresh archive volume."""
    stop(host, clean=False)
    shutil.rmtree(host.dir / "upper", ignore_errors=True)
    (host.dir / "scenarios").unlink(missing_ok=True)
    if not host.is_probe:
        make_archive_volume(host)
    start(host, image)


def ready_or_boot_again(host: Host, image: Path) -> None:
    """wait_ready; a boot with a failed unit is booted once more, from scratch (the failure's
    journal is kept in the host's boot-failures.log and printed), and a second one is an error."""
    try:
        wait_ready(host)
    except BootFailed as failed:
        print(f"walguard lab: {failed}; booting {host.name} once more", file=sys.stderr)
        _fresh_boot(host, image)
        wait_ready(host)


def reset(host: Host, image: Path) -> None:
    """Back to the pristine host: fresh overlay layer from the template, fresh archive volume."""
    _fresh_boot(host, image)
    ready_or_boot_again(host, image)


def destroy(host: Host) -> None:
    stop(host)
    shutil.rmtree(host.dir, ignore_errors=True)
