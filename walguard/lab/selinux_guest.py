"""The SELinux guest: a Debian 12 virtual machine under QEMU (TCG), host name selinux1.

The nspawn hosts share this machine's kernel, which runs no SELinux, so the one lab host that
must enforce a policy is a real VM with its own kernel: SELinux enforcing with Debian's reference
policy (PostgreSQL confined as postgresql_t), auditd, and a second disk mounted at /pg_archive
that carries no labels at all. On the pristine guest archiving therefore fails with Permission
denied and an AVC denial, until the archive is labelled (semanage fcontext ... postgresql_db_t,
restorecon).

Apart from that deliberate break it is a complete lab host, like the nspawn ones: on the lab
bridge at its own address (the zones' probe hosts reach its PostgreSQL, zone-b is refused by its
nftables firewall), TLS with a certificate from the lab CA, chronyd tracking probe-a, its name
resolving to its address.

The work is in four modules: selinux_settings (name, address, machine), selinux_image (the
cached image), selinux_provision (this lab's keys and certificate), selinux_vm (the QEMU process
and its tap). This one waits for the guest, resets it, and presents it as a lab host
(walguard.lab.labhost.LabHost).

Once the first boot is ready, the guest's whole state is saved as a snapshot (selinux_vm); a
reset loads it back (every write to either disk and every process's state thrown away) and lets
a fresh chronyd step the clock, which the snapshot left behind: seconds, where a reboot under TCG
takes a minute. Without a snapshot (or without probe-a, the time source) a reset boots again.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

from walguard.lab import labhost, settings
from walguard.lab.errors import LabError
from walguard.lab.hosts import Host
from walguard.lab.selinux_image import GuestImage, ensure_image
from walguard.lab.selinux_provision import known_hosts_lines
from walguard.lab.selinux_settings import (
    ADDRESS,
    BOOT_TIMEOUT_S,
    NAME,
    POSTGRES_SERVICE,
    SSH_PORT,
    say,
    state_dir,
)
from walguard.lab.selinux_vm import (
    booted_at,
    console,
    has_pristine,
    load_pristine,
    qemu_pid,
    running,
    save_pristine,
    start,
    stop,
)

# What the rest of the lab uses (manage, inventory, the tests).
__all__ = [
    "ADDRESS",
    "GUEST",
    "NAME",
    "POSTGRES_SERVICE",
    "SSH_PORT",
    "destroy",
    "ensure_image",
    "known_hosts_lines",
    "qemu_pid",
    "reset",
    "running",
    "ssh_argv",
    "start",
    "state_dir",
    "stop",
    "wait_ready",
]

# One SSH round trip per poll: the exit status says what the guest still waits for. A unit that
# failed while booting is an error at once: the pristine guest must pass WG-SYS-003.
_READY = """
systemctl is-active -q {service} && sudo -n -u postgres pg_isready -q || exit 11
{clock}
case $(systemctl is-system-running) in
  running) date +%s.%N; exit 0;;
  initializing|starting) exit 13;;
esac
systemctl list-units --failed --plain --no-legend --no-pager
exit 14
"""
_CLOCK = "chronyc -n tracking | grep -q '^Leap status *: Normal$' || exit 12"
_WAITING_FOR = {
    255: "SSH",
    11: "PostgreSQL",
    12: "chronyd to synchronise with probe-a",
    13: "the boot to finish",
    15: "the clock to agree with this machine's",
}
# How far the guest's clock may be from this machine's, beyond the SSH round trip that read it.
_CLOCK_SLACK_S = 0.5


def ssh_argv(
    command: list[str], *, known_hosts: Path | None = None, connect_timeout: int = 10
) -> list[str]:
    """Log in as the audit user at the guest's lab address, with strict host-key checking."""
    return labhost.ssh_argv(
        ADDRESS,
        command,
        port=SSH_PORT,
        known_hosts=known_hosts,
        connect_timeout=connect_timeout,
    )


def _probe_argv(command: str) -> list[str]:
    """SSH to the guest while it boots, checking its key against its own known_hosts line (the
    lab's known_hosts is written only once the lab is up)."""
    probe_known_hosts = state_dir() / "known_hosts"
    probe_known_hosts.write_text("".join(known_hosts_lines()))
    return ssh_argv([command], known_hosts=probe_known_hosts, connect_timeout=5)


def _sshd_listens() -> bool:
    # Before the guest's network is up nothing answers ARP, and ssh would wait out its timeout.
    try:
        with socket.create_connection((ADDRESS, SSH_PORT), timeout=1):
            return True
    except OSError:
        return False


def _time_source_runs() -> bool:
    """probe-a serves the lab's time; without it (`lab up --hosts 0 --selinux`) the guest's
    chronyd has nothing to synchronise with, and readiness does not wait for it."""
    return Host(settings.probe_name(settings.ZONES[0])).running()


def _clock_agrees(before: float, output: str, after: float) -> bool:
    """Whether the guest's clock (`date +%s.%N` read between `before` and `after`) agrees with
    this machine's; a clock the snapshot left behind would not, even with chronyd content."""
    try:
        guest = float(output.split()[-1])
    except (IndexError, ValueError):
        return False
    return before - _CLOCK_SLACK_S <= guest <= after + _CLOCK_SLACK_S


def _until_ready(timeout: float, progress: bool) -> None:
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + 15
    clock = _CLOCK if _time_source_runs() else ""
    check = _READY.format(service=shlex.quote(POSTGRES_SERVICE), clock=clock)
    rc = 255
    while True:
        if not running():
            raise LabError(f"{NAME} stopped while booting: {console()}")
        if _sshd_listens():
            before = time.time()
            done = subprocess.run(
                _probe_argv(check), capture_output=True, text=True, timeout=60, check=False
            )
            rc = done.returncode
            if rc == 0 and (not clock or _clock_agrees(before, done.stdout, time.time())):
                return
            if rc == 0:
                rc = 15
            if rc == 14:
                raise LabError(f"{NAME} booted with failed unit(s): {done.stdout.strip()}")
        now = time.monotonic()
        stage = _WAITING_FOR.get(rc, f"the readiness check (exit {rc})")
        if now > deadline:
            raise LabError(
                f"{NAME} did not become ready within {timeout:.0f} s (waiting for {stage}); "
                f"console: {console()}"
            )
        if progress and now >= next_note:
            say(f"{NAME}: still booting, waiting for {stage} ({time.time() - booted_at():.0f} s)")
            next_note = now + 15
        time.sleep(1)


def _resync_clock() -> None:
    """A fresh chronyd: it steps the clock at its first measurements of probe-a (`makestep`),
    where the running one would slew a clock minutes behind for hours."""
    done = subprocess.run(
        _probe_argv("sudo -n systemctl restart chrony.service"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"{NAME}: restarting chronyd failed: {done.stderr.strip()}")


def wait_ready(timeout: float = BOOT_TIMEOUT_S, progress: bool = True) -> float:
    """Wait until sshd answers, PostgreSQL accepts connections, the clock is synchronised and
    agrees with this machine's (when probe-a runs) and the boot has finished with no failed
    unit; then, once per boot, save that pristine state for resets. Return the seconds it took
    since QEMU started."""
    _until_ready(timeout, progress)
    if _time_source_runs() and not has_pristine():
        save_pristine()
        _resync_clock()
        _until_ready(timeout, progress)
    return time.time() - booted_at()


def reset(img: GuestImage) -> float:
    """Back to the pristine guest: the saved pristine state if there is one, else a boot with
    fresh overlays over the image's root and unlabelled archive disks."""
    (state_dir() / "scenarios").unlink(missing_ok=True)
    if has_pristine() and _time_source_runs():
        started = time.monotonic()
        try:
            load_pristine()
            _resync_clock()
            _until_ready(BOOT_TIMEOUT_S, progress=True)
            return time.monotonic() - started
        except LabError as exc:  # a guest that cannot be restored is booted again
            say(f"{NAME}: loading the pristine snapshot failed ({exc}); booting again")
    stop()
    start(img)
    return wait_ready()


def destroy() -> None:
    """Stop the guest and forget this lab's guest state (keys, overlays, logs)."""
    stop()
    shutil.rmtree(state_dir(), ignore_errors=True)


class SelinuxGuest:
    """The guest as a lab host (walguard.lab.labhost.LabHost): this module's functions behind
    the interface every kind of lab host has."""

    name = NAME
    address = ADDRESS
    ssh_port = SSH_PORT

    def running(self) -> bool:
        return running()

    def start(self) -> None:
        start(ensure_image())

    def wait_ready(self) -> None:
        wait_ready()

    def stop(self) -> None:
        stop()

    def reset(self) -> None:
        reset(ensure_image())

    def destroy(self) -> None:
        destroy()

    def known_hosts_lines(self) -> list[str]:
        return known_hosts_lines()

    def ssh_argv(self, command: list[str]) -> list[str]:
        return ssh_argv(command)

    def run_as_root(self, argv: list[str], input_text: str) -> subprocess.CompletedProcess[str]:
        # No nsenter into a VM: through SSH and sudo, as the audit user would.
        remote = " ".join(shlex.quote(a) for a in ["sudo", "-n", *argv])
        return subprocess.run(
            ssh_argv([remote]),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    def evidence(self) -> str:
        return console()

    def record_scenario(self, name: str) -> None:
        with (state_dir() / "scenarios").open("a") as f:
            f.write(f"{name}\n")

    def applied_scenarios(self) -> list[str]:
        path = state_dir() / "scenarios"
        return path.read_text().split() if path.exists() else []


GUEST = SelinuxGuest()
