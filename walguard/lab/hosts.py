"""Lab hosts: Debian 12 systemd-nspawn containers booted with real systemd, each on its own
copy-on-write layer over the cached image, with its own /pg_archive volume (a loop-mounted ext4).

Per host, under STATE_DIR/hosts/NAME/:
  template/  the host's pristine overlay layer (hostname, address, host key, audit key)
  upper/ work/ merged/   the running overlay
  pg_archive.img         the dedicated archive volume
  nspawn.pid, console.log
A reset throws away upper/ and the archive volume and boots again from template/: the host is
pristine in seconds without rebuilding anything.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from walguard.lab import image, settings, tls
from walguard.lab.errors import LabError
from walguard.lab.labhost import (
    console_tail,
    keygen,
    lab_key,
    pid_from_file,
    ssh_argv,
)
from walguard.lab.proc import run

BOOT_TIMEOUT_S = 90


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
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) > 1 and ids[-1] == "1":
                        return pid
            todo.extend(int(c) for c in children)
        return None

    def running(self) -> bool:
        return self.nspawn_pid() is not None


def passwd_ids(root: Path, user: str) -> tuple[int, int]:
    """uid and gid of a user in an image's /etc/passwd (not this machine's)."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"user {user} missing from the image at {root}")


def _is_mounted(path: Path) -> bool:
    return run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def _write(path: Path, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, *owner)
    path.chmod(mode)


def _make_template(host: Host, image: Path) -> None:
    """Write the host's own files through a temporary overlay, then keep its upper layer."""
    template = host.dir / "template"
    if (template / ".walguard-complete").exists():
        return
    for sub in ("template", "upper", "work", "merged"):
        shutil.rmtree(host.dir / sub, ignore_errors=True)
    for sub in ("template", "merged"):
        (host.dir / sub).mkdir(parents=True)
    _mount_overlay(host, image, upper=template)
    root = host.merged
    try:
        _write(root / "etc/hostname", f"{host.name}\n")
        # Each host its own machine id (the image's would be shared by every host).
        _write(root / "etc/machine-id", f"{secrets.token_hex(16)}\n", mode=0o444)
        _write(root / "etc/hosts", f"127.0.0.1 localhost\n{host.address} {host.name}\n")
        _write_ssh_keys(host, root)
        if host.is_probe:
            _probe_layer(root)
        else:
            _database_layer(host, root)
    finally:
        run(["umount", str(root)])
    (template / ".walguard-complete").write_text("")


def _database_layer(host: Host, root: Path) -> None:
    """A database host's address, PostgreSQL listeners, pg_hba, TLS and its own cluster."""
    _write(
        root / "etc/systemd/network/10-host0.network",
        "[Match]\nName=host0\n\n[Network]\n"
        f"Address={host.address}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n"
        f"[Route]\nDestination={settings.LAB_NET}\nGateway={settings.BRIDGE_ADDR}\n",
    )
    # PostgreSQL listens on loopback and on the host's own lab address, nowhere else.
    pg_ids = passwd_ids(root, "postgres")
    _write(
        root / "etc/postgresql/15/main/conf.d/20-walguard-listen.conf",
        f"listen_addresses = 'localhost,{host.address}'\n",
        owner=pg_ids,
    )
    _write(
        root / "etc/postgresql/15/main/pg_hba.conf",
        (root / "etc/postgresql/15/main/pg_hba.conf").read_text()
        + "# zone-a (application zone) may connect with a password\n"
        + f"host all all {settings.ZONES[0].subnet} scram-sha-256\n",
        mode=0o640,
        owner=pg_ids,
    )
    _tls_layer(host, root, pg_ids)
    # The host's own cluster (its own system identifier), made in its own layer.
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        run(
            ["chroot", str(root), "/bin/sh", "/usr/local/lib/walguard-lab/new-cluster.sh"],
            timeout=300,
        )
    finally:
        run(["umount", str(root / "proc")], check=False)


def _write_ssh_keys(host: Host, root: Path) -> None:
    """The host's own SSH host key (recorded for known_hosts) and the audit user's login key."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        keygen(key, f"root@{host.name}")
        _write(root / "etc/ssh/ssh_host_ed25519_key", key.read_text(), mode=0o600)
        pub = Path(f"{key}.pub").read_text()
        _write(root / "etc/ssh/ssh_host_ed25519_key.pub", pub)
    (host.dir / "host_key.pub").write_text(pub)
    uid_gid = passwd_ids(root, settings.AUDIT_USER)
    audit_pub = Path(f"{lab_key()}.pub").read_text()
    _write(root / f"home/{settings.AUDIT_USER}/.ssh/authorized_keys", audit_pub, 0o600, uid_gid)


def _probe_layer(root: Path) -> None:
    """A probe host runs no cluster and has no host0; it serves time to the lab (probe-a)."""
    for unit in (
        "postgresql.service",
        "postgresql@15-main.service",
        "systemd-networkd-wait-online.service",
    ):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    _write(
        root / "etc/chrony/chrony.conf",
        "# Lab probe host: serves its (the machine's) clock to the lab hosts.\n"
        "local stratum 8\n"
        f"allow {settings.LAB_NET}\n"
        "driftfile /var/lib/chrony/chrony.drift\n",
    )


def _tls_layer(host: Host, root: Path, pg_ids: tuple[int, int]) -> None:
    """Server certificates from the lab CA: the one in use, and the bad ones scenarios use."""
    tls_dir = root / "etc/walguard-lab/tls"
    certs = {
        "server": tls.issue_server(host.name, host.address),
        "wrong-name": tls.issue_server(f"not-{host.name}.invalid", None),
        "expiring": tls.issue_server(host.name, host.address, days=tls.EXPIRING_DAYS),
    }
    for name, issued in certs.items():
        _write(tls_dir / f"{name}.crt", issued.cert_pem.decode(), 0o644, pg_ids)
        _write(tls_dir / f"{name}.key", issued.key_pem.decode(), 0o600, pg_ids)
    _write(
        root / "etc/postgresql/15/main/conf.d/30-walguard-tls.conf",
        "# TLS with a certificate from the lab CA for this host's name and address.\n"
        "ssl = on\n"
        "ssl_cert_file = '/etc/walguard-lab/tls/server.crt'\n"
        "ssl_key_file = '/etc/walguard-lab/tls/server.key'\n",
        owner=pg_ids,
    )


def _mount_overlay(host: Host, image: Path, upper: Path) -> None:
    shutil.rmtree(host.dir / "work", ignore_errors=True)
    (host.dir / "work").mkdir()
    opts = f"lowerdir={image},upperdir={upper},workdir={host.dir / 'work'}"
    run(["mount", "-t", "overlay", "overlay", "-o", opts, str(host.merged)])


def _make_archive_volume(host: Host) -> None:
    host.archive_image.unlink(missing_ok=True)
    with host.archive_image.open("wb") as f:
        f.truncate(settings.ARCHIVE_SIZE_MIB * 1024 * 1024)
    # -m 0: no root reserve, so "filesystem full" means full for postgres too.
    run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "pg_archive", str(host.archive_image)])


def start(host: Host, image: Path) -> None:
    if host.running():
        return
    _make_template(host, image)
    upper = host.dir / "upper"
    if not upper.exists():
        run(["cp", "-a", str(host.dir / "template"), str(upper)])
    if not _is_mounted(host.merged):
        _mount_overlay(host, image, upper=upper)
    if not host.is_probe:
        _mount_archive_volume(host)
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


def _mount_archive_volume(host: Host) -> None:
    if not host.archive_image.exists():
        _make_archive_volume(host)
    archive = host.merged / settings.ARCHIVE_DIR.lstrip("/")
    if not _is_mounted(archive):
        run(["mount", "-o", "loop", str(host.archive_image), str(archive)])
        uid, gid = passwd_ids(host.merged, "postgres")
        os.chown(archive, uid, gid)
        archive.chmod(0o750)


class BootFailed(LabError):
    """The host came up, but not clean: a unit failed while it booted."""


def wait_ready(host: Host, timeout: float = BOOT_TIMEOUT_S) -> None:
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
            # `is-active` exits 0 if any unit is active: read every line instead.
            units = ["systemctl", "is-active", "ssh.service", "postgresql@15-main.service"]
            active = exec_in(host, units, check=False).stdout.split() == ["active", "active"]
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


def _failed_units(host: Host, deadline: float) -> str:
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


def _tracking(host: Host) -> str:
    return exec_in(host, ["chronyc", "-n", "tracking"], check=False).stdout


def _wait_units(host: Host, units: list[str], deadline: float, timeout: float) -> None:
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


def exec_in(
    host: Host,
    argv: list[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command as root inside the host (all its namespaces)."""
    leader = host.leader_pid()
    if leader is None:
        raise LabError(f"{host.name} is not running")
    return run(
        ["nsenter", "-t", str(leader), "-a", "--", *argv],
        input_text=input_text,
        check=check,
        timeout=timeout,
    )


def psql(host: Host, sql: str) -> str:
    done = exec_in(
        host,
        ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
    )
    return done.stdout


def _is_pid_ns_init(pid: int) -> bool:
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
    archive = host.merged / settings.ARCHIVE_DIR.lstrip("/")
    for path in (archive, host.merged):
        if _is_mounted(path):
            run(["umount", str(path)])
    # mount -o loop sets autoclear; detach anything left over all the same.
    listed = run(["losetup", "-j", str(host.archive_image)], check=False).stdout
    for line in listed.splitlines():
        run(["losetup", "-d", line.split(":", 1)[0]], check=False)


def _saved_leader(host: Host) -> int | None:
    try:
        return int((host.dir / "leader.pid").read_text())
    except (OSError, ValueError):
        return None


def leftovers(host: Host) -> bool:
    """Anything of this host still holding resources (for a clean `down`)."""
    archive = host.merged / settings.ARCHIVE_DIR.lstrip("/")
    return host.running() or _is_mounted(host.merged) or _is_mounted(archive)


def _fresh_boot(host: Host, image: Path) -> None:
    """Boot from a fresh overlay layer (from the template) and a fresh archive volume."""
    stop(host, clean=False)
    shutil.rmtree(host.dir / "upper", ignore_errors=True)
    (host.dir / "scenarios").unlink(missing_ok=True)
    if not host.is_probe:
        _make_archive_volume(host)
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
