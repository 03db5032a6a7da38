"""Lab hosts: Debian 12 systemd-nspawn containers booted with real systemd, each on its own
copy-on-write layer over the cached image, with its own /pg_archive volume (a loop-mounted ext4).

Per host, under STATE_DIR/hosts/NAME/:
  template/  the host's pristine overlay layer (hostname, address, host key, audit key)
  upper/ work/ merged/   the running overlay
  pg_archive.img         the dedicated archive volume
  nspawn.pid, console.log
A reset throws away upper/ and the archive volume and boots again from template/: the host is
pristine in seconds without rebuilding anything.

This module holds the host and its lifecycle (start, stop, reset, destroy); where it lives and
its processes are walguard.lab.container. What it is made of
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

from walguard.lab import image, restore_exports, settings
from walguard.lab.container import Container, is_pid_ns_init
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
from walguard.lab.proc import run


@dataclass(frozen=True)
class Host(Container):
    """A lab container host with its lifecycle (walguard.lab.labhost.LabHost): the work is in
    this module's functions, which take the host."""

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

    def run_as_root(self, argv: list[str], input_text: str) -> subprocess.CompletedProcess[str]:
        return exec_in(self, argv, input_text=input_text, check=False)


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
        restore_exports.export(host.name, host.merged)
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
            *restore_exports.nspawn_options(host.name),
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
    if leader is not None and is_pid_ns_init(leader):
        # Killing a PID namespace's init kills every process in it: nothing of the host survives.
        os.kill(leader, signal.SIGKILL)
        _wait_gone(lambda: is_pid_ns_init(leader), 10)
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
