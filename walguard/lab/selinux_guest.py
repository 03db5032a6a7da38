"""The SELinux guest: a Debian 12 virtual machine under QEMU (TCG), host name selinux1.

The nspawn hosts share this machine's kernel, which runs no SELinux, so the one lab host that
must enforce a policy is a real VM with its own kernel: SELinux enforcing with Debian's reference
policy (PostgreSQL confined as postgresql_t), auditd, and a second disk mounted at /pg_archive
that carries no labels at all. On the pristine guest archiving therefore fails with Permission
denied and an AVC denial, until the archive is labelled (semanage fcontext ... postgresql_db_t,
restorecon).

The image is built once per recipe (lab/selinux/, plus the archive and sshd settings shared with
the nspawn hosts) and cached under CACHE_DIR/images/selinux-HASH/:
  rootfs.ext4      the root disk, labelled at build time (QEMU opens it with snapshot=on)
  pg_archive.ext4  the pristine archive disk (plain mkfs.ext4: unlabelled, postgres 0750)
  vmlinuz, initrd.img   the guest's own kernel, booted directly
Per lab, under STATE_DIR/selinux1/:
  ssh_host_ed25519_key(.pub), authorized_keys   handed to the guest over QEMU fw_cfg
  pg_archive.img   the guest's writable copy of the archive disk
  qemu.pid, qemu.log, console.log (the serial console)
A reset throws the archive copy and every write to the root disk away and boots again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from walguard.lab import image, labhost, settings
from walguard.lab.errors import LabError
from walguard.lab.labhost import console_tail, keygen, lab_key, pid_from_file
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids

NAME = "selinux1"
RECIPE_DIR = settings.PROJECT_ROOT / "lab" / "selinux"
# Files of the nspawn hosts' recipe that the guest uses as they are, so that the two cannot drift:
# the archive settings the audit expects and the key-only sshd settings.
SHARED_FILES = (
    "etc/postgresql/15/main/conf.d/10-walguard-archive.conf",
    "etc/ssh/sshd_config.d/10-walguard-lab.conf",
    "usr/local/lib/walguard-lab/audit-host.sh",
)
# Bumped when the build steps below change in a way that changes the image.
BUILD_REVISION = "1"

SSH_ADDRESS = "127.0.0.1"
SSH_PORT = 2222
POSTGRES_SERVICE = "postgresql@15-main.service"
MEMORY_MIB = 2048
CPUS = 2
ROOT_SIZE_MIB = 4096
BOOT_TIMEOUT_S = 240
KERNEL_ARGS = (
    "root=/dev/vda rw console=ttyS0 security=selinux selinux=1 enforcing=1 audit=1 "
    "net.ifnames=0 quiet"
)
FW_CFG = "opt/walguard"
POLICY = "default"


@dataclass(frozen=True)
class GuestImage:
    dir: Path

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs.ext4"

    @property
    def archive(self) -> Path:
        return self.dir / "pg_archive.ext4"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"


def recipe_hash() -> str:
    digest = hashlib.sha256(f"walguard-selinux-guest {BUILD_REVISION}\0".encode())
    digest.update(image.recipe_hash(RECIPE_DIR).encode())
    for rel in SHARED_FILES:
        digest.update(f"\0{rel}\0".encode())
        digest.update((settings.RECIPE_DIR / "files" / rel).read_bytes())
    return digest.hexdigest()[:16]


def image_dir() -> Path:
    return settings.CACHE_DIR / "images" / f"selinux-{recipe_hash()}"


def state_dir() -> Path:
    return settings.STATE_DIR / NAME


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _label(path: Path) -> str:
    try:
        return os.getxattr(path, "security.selinux", follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return ""


def _umount_under(path: Path) -> None:
    """Unmount whatever is still mounted inside a build root (deepest first), so that removing
    the root can never reach into /proc, /sys or /dev of this machine."""
    prefix = str(path.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], check=False)


def ensure_image(progress: bool = True) -> GuestImage:
    """Return the cached guest image, building it first if this recipe was never built here."""
    final = image_dir()
    if (final / ".walguard-image-complete").exists():
        return GuestImage(final)
    started = time.monotonic()

    def say(msg: str) -> None:
        if progress:
            _say(f"selinux image: {msg} ({time.monotonic() - started:.0f} s)")

    tmp = final.with_name(final.name + ".building")
    root = tmp / "root"
    if tmp.exists():
        _umount_under(tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    say(f"building {final.name} with debootstrap (first time only; a few minutes)")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(image.packages(RECIPE_DIR))}",
            image.SUITE,
            str(root),
            image.debian_mirror(),
        ],
        timeout=1800,
    )
    say("debootstrap done; configuring")
    run(["cp", "-a", f"{RECIPE_DIR / 'files'}/.", str(root)])
    for rel in SHARED_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(settings.RECIPE_DIR / "files" / rel, root / rel)
    shutil.copy(RECIPE_DIR / "setup.sh", root / "tmp" / "walguard-setup.sh")
    contexts = f"/etc/selinux/{POLICY}/contexts/files/file_contexts"
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        run(["chroot", str(root), "/bin/sh", "/tmp/walguard-setup.sh"], timeout=600)
        (root / "tmp" / "walguard-setup.sh").unlink()
        say("labelling every file with the policy's file contexts (setfiles)")
        # -F: the full context (user and range too); /proc and /sys are not part of the image.
        run(
            ["chroot", str(root), "setfiles", "-F", "-e", "/proc", "-e", "/sys", contexts, "/"],
            timeout=900,
        )
    finally:
        _umount_under(root)
    postgres_label = _label(root / "usr/lib/postgresql/15/bin/postgres")
    if ":postgresql_exec_t:" not in postgres_label:
        raise LabError(
            "labelling the SELinux guest image failed: the postgres binary is labelled "
            f"{postgres_label or 'nothing'} instead of postgresql_exec_t"
        )
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LabError("the SELinux guest image has no kernel or initrd in /boot")
    shutil.copy(kernels[-1], tmp / "vmlinuz")
    shutil.copy(initrds[-1], tmp / "initrd.img")
    uid, gid = passwd_ids(root, "postgres")

    say("writing the root disk (mkfs.ext4 -d keeps owners, modes and SELinux labels)")
    rootfs = tmp / "rootfs.ext4"
    size = f"{ROOT_SIZE_MIB}M"
    run(
        ["mkfs.ext4", "-q", "-F", "-L", "selinux1-root", "-d", str(root), str(rootfs), size],
        timeout=900,
    )
    # The archive disk: a bare ext4 with no labels (that is the point), owned by postgres, 0750;
    # -m 0: no root reserve, so "filesystem full" means full for postgres too.
    archive = tmp / "pg_archive.ext4"
    with archive.open("wb") as f:
        f.truncate(settings.ARCHIVE_SIZE_MIB * 1024 * 1024)
    owner = f"root_owner={uid}:{gid}"
    run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "pg_archive", "-E", owner, str(archive)])
    run(["debugfs", "-w", "-R", "set_inode_field <2> mode 040750", str(archive)])
    _umount_under(root)
    shutil.rmtree(root)
    (tmp / ".walguard-image-complete").write_text(recipe_hash() + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    say(f"image ready at {final}")
    for old in final.parent.glob("selinux-*"):
        # Older recipes' images, unless a running guest still boots from one.
        pid = qemu_pid()
        in_use = pid is not None and str(old) in Path(f"/proc/{pid}/cmdline").read_text(
            errors="replace"
        )
        if old != final and not old.name.endswith(".building") and not in_use:
            shutil.rmtree(old, ignore_errors=True)
    return GuestImage(final)


def _pid_file() -> Path:
    return state_dir() / "qemu.pid"


def qemu_pid() -> int | None:
    """The guest's QEMU process, if it runs (a stale pid file or a reused pid is not it)."""
    return pid_from_file(
        _pid_file(),
        lambda argv: (
            argv[0].endswith(b"qemu-system-x86_64") and f"walguard-{NAME}".encode() in argv
        ),
    )


def running() -> bool:
    return qemu_pid() is not None


def _ensure_keys() -> None:
    """The guest's SSH host key and the audit user's key, made once per lab (kept by a reset)."""
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    key = state / "ssh_host_ed25519_key"
    if not key.exists():
        keygen(key, f"root@{NAME}")
    shutil.copy(f"{lab_key()}.pub", state / "authorized_keys")


def host_key_pub() -> str:
    return (state_dir() / "ssh_host_ed25519_key.pub").read_text()


def known_hosts_lines() -> list[str]:
    """The guest's host key under its name and under the forwarded address and port."""
    key_type, key_b64 = host_key_pub().split()[:2]
    return [f"{NAME},[{SSH_ADDRESS}]:{SSH_PORT} {key_type} {key_b64}\n"]


def _fresh_archive(img: GuestImage) -> None:
    target = state_dir() / "pg_archive.img"
    target.unlink(missing_ok=True)
    run(["cp", "--sparse=always", str(img.archive), str(target)])


def qemu_argv(img: GuestImage) -> list[str]:
    state = state_dir()
    netdev = f"user,id=net0,restrict=on,hostfwd=tcp:{SSH_ADDRESS}:{SSH_PORT}-:22"
    return [
        "qemu-system-x86_64",
        "-name",
        f"walguard-{NAME}",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        str(MEMORY_MIB),
        "-smp",
        str(CPUS),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-kernel",
        str(img.kernel),
        "-initrd",
        str(img.initrd),
        "-append",
        KERNEL_ARGS,
        # The cached root disk is never written: the guest's writes go to a throwaway overlay.
        "-drive",
        f"file={img.rootfs},format=raw,if=virtio,snapshot=on",
        "-drive",
        f"file={state / 'pg_archive.img'},format=raw,if=virtio",
        "-netdev",
        netdev,
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
        "-serial",
        f"file:{state / 'console.log'}",
        "-fw_cfg",
        f"name={FW_CFG}/ssh_host_ed25519_key,file={state / 'ssh_host_ed25519_key'}",
        "-fw_cfg",
        f"name={FW_CFG}/authorized_keys,file={state / 'authorized_keys'}",
    ]


def start(img: GuestImage) -> None:
    """Boot the guest (no-op if it runs); `wait_ready` waits for it."""
    if running():
        return
    if shutil.which("qemu-system-x86_64") is None:
        raise LabError(
            "qemu-system-x86_64 is not installed "
            "(run `make deps` or apt-get install qemu-system-x86)"
        )
    _ensure_keys()
    state = state_dir()
    if not (state / "pg_archive.img").exists():
        _fresh_archive(img)
    (state / "console.log").write_bytes(b"")
    log = (state / "qemu.log").open("wb")
    proc = subprocess.Popen(
        qemu_argv(img),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    _pid_file().write_text(f"{proc.pid}\n")
    (state / "started").write_text(f"{time.time()}\n")
    # QEMU fails fast on a bad argument or a busy port: report that rather than a boot timeout.
    deadline = time.monotonic() + 3
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is not None:
        _pid_file().unlink(missing_ok=True)
        lines = (state / "qemu.log").read_text(errors="replace").strip().splitlines()
        raise LabError(
            f"{NAME}: QEMU exited at once ({lines[-1] if lines else f'exit {proc.returncode}'})"
        )


def ssh_argv(
    command: list[str], *, known_hosts: Path | None = None, connect_timeout: int = 10
) -> list[str]:
    """Log in as the audit user through the forwarded port, with strict host-key checking."""
    return labhost.ssh_argv(
        SSH_ADDRESS,
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


def _console_tail(lines: int = 3) -> str:
    return console_tail(state_dir() / "console.log", lines)


def wait_ready(timeout: float = BOOT_TIMEOUT_S, progress: bool = True) -> float:
    """Wait until sshd answers and PostgreSQL accepts connections; return the seconds it took
    since QEMU started."""
    try:
        booted_at = float((state_dir() / "started").read_text())
    except (OSError, ValueError):
        booted_at = time.time()
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + 15
    check = (
        f"systemctl is-active ssh.service {POSTGRES_SERVICE} >/dev/null && "
        "sudo -n -u postgres pg_isready -q"
    )
    stage = "SSH"
    while True:
        if not running():
            raise LabError(f"{NAME} stopped while booting: {_console_tail()}")
        done = subprocess.run(
            _probe_argv(check), capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode == 0:
            break
        if done.returncode != 255:
            stage = "PostgreSQL"  # sshd answered; the check itself failed
        now = time.monotonic()
        if now > deadline:
            raise LabError(
                f"{NAME} did not become ready within {timeout:.0f} s (waiting for {stage}); "
                f"console: {_console_tail()}"
            )
        if progress and now >= next_note:
            _say(f"{NAME}: still booting, waiting for {stage} ({time.time() - booted_at:.0f} s)")
            next_note = now + 15
        time.sleep(2)
    return time.time() - booted_at


def stop(timeout: float = 10) -> None:
    """Power the guest off at once (its root disk writes are thrown away by design)."""
    pid = qemu_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while qemu_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if qemu_pid() is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while qemu_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        if qemu_pid() is not None:
            raise LabError(f"{NAME}: QEMU (pid {pid}) did not stop")
        # Reap it if this process started it (no zombie left behind); else init does.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    _pid_file().unlink(missing_ok=True)
    (state_dir() / "known_hosts").unlink(missing_ok=True)


def reset(img: GuestImage) -> float:
    """Back to the pristine guest: fresh root overlay and a fresh unlabelled archive disk."""
    stop()
    (state_dir() / "scenarios").unlink(missing_ok=True)
    _fresh_archive(img)
    start(img)
    return wait_ready()


def destroy() -> None:
    """Stop the guest and forget this lab's guest state (keys, archive disk, logs)."""
    stop()
    shutil.rmtree(state_dir(), ignore_errors=True)


class SelinuxGuest:
    """The guest as a lab host (walguard.lab.labhost.LabHost): this module's functions behind
    the interface every kind of lab host has."""

    name = NAME
    address = SSH_ADDRESS
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
        return _console_tail()

    def record_scenario(self, name: str) -> None:
        with (state_dir() / "scenarios").open("a") as f:
            f.write(f"{name}\n")

    def applied_scenarios(self) -> list[str]:
        path = state_dir() / "scenarios"
        return path.read_text().split() if path.exists() else []


GUEST = SelinuxGuest()
