"""The SELinux guest's virtual machine: the QEMU process (TCG: this machine has no KVM), its disks
and its network card, a tap on the lab bridge.

Per lab, under STATE_DIR/selinux1/:
  root.qcow2, pg_archive.qcow2   copy-on-write overlays over the cached image's root and archive
                   disks (which QEMU opens read-only), made fresh at every boot
  qmp.sock         QEMU's monitor (QMP), for the pristine snapshot
  qemu.pid, qemu.log, console.log (the serial console), started (when QEMU started)

Once the booted guest is ready, its whole state (memory, devices and both overlays) is saved as
the snapshot "pristine" inside root.qcow2; a reset loads it again in seconds, where a boot under
TCG takes a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from walguard.lab import network, settings
from walguard.lab.errors import LabError
from walguard.lab.labhost import console_tail, pid_from_file
from walguard.lab.proc import run
from walguard.lab.selinux_image import GuestImage
from walguard.lab.selinux_provision import fw_cfg_args, prepare
from walguard.lab.selinux_settings import (
    CPUS,
    KERNEL_ARGS,
    MAC,
    MEMORY_MIB,
    NAME,
    TAP,
    state_dir,
)


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


PRISTINE = "pristine"


def make_overlays(img: GuestImage) -> None:
    """Fresh overlays: the guest's writes go there, never into the cached image."""
    for name, backing in (("root.qcow2", img.rootfs), ("pg_archive.qcow2", img.archive)):
        target = state_dir() / name
        target.unlink(missing_ok=True)
        run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(backing),
                str(target),
            ]
        )


def qemu_argv(img: GuestImage) -> list[str]:
    state = state_dir()
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
        # The cached disks are backing files, opened read-only: the guest writes the overlays.
        "-drive",
        f"file={state / 'root.qcow2'},format=qcow2,if=virtio",
        "-drive",
        f"file={state / 'pg_archive.qcow2'},format=qcow2,if=virtio",
        # On the lab bridge like the nspawn hosts (the tap exists before QEMU opens it).
        "-netdev",
        f"tap,id=net0,ifname={TAP},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=net0,mac={MAC}",
        "-device",
        "virtio-rng-pci",
        "-serial",
        f"file:{state / 'console.log'}",
        "-qmp",
        f"unix:{state / 'qmp.sock'},server=on,wait=off",
        *fw_cfg_args(),
    ]


def _tap_up() -> None:
    """The guest's tap on the lab bridge (the bridge made first if the lab has no host yet)."""
    network.up()
    _tap_down()
    run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"])
    run(["ip", "link", "set", TAP, "master", settings.BRIDGE])
    run(["ip", "link", "set", TAP, "up"])


def _tap_down() -> None:
    if Path("/sys/class/net", TAP).exists():
        run(["ip", "link", "del", TAP], check=False)


def start(img: GuestImage) -> None:
    """Boot the guest (no-op if it runs); `selinux_guest.wait_ready` waits for it."""
    if running():
        return
    if shutil.which("qemu-system-x86_64") is None:
        raise LabError(
            "qemu-system-x86_64 is not installed "
            "(run `make deps` or apt-get install qemu-system-x86)"
        )
    prepare()
    state = state_dir()
    (state / PRISTINE).unlink(missing_ok=True)
    make_overlays(img)
    _tap_up()
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
    # QEMU fails fast on a bad argument or a busy tap: report that rather than a boot timeout.
    deadline = time.monotonic() + 3
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is not None:
        _pid_file().unlink(missing_ok=True)
        _tap_down()
        lines = (state / "qemu.log").read_text(errors="replace").strip().splitlines()
        raise LabError(
            f"{NAME}: QEMU exited at once ({lines[-1] if lines else f'exit {proc.returncode}'})"
        )


def booted_at() -> float:
    """When QEMU was started (time.time()), or now if that is unknown."""
    try:
        return float((state_dir() / "started").read_text())
    except (OSError, ValueError):
        return time.time()


def console(lines: int = 3) -> str:
    return console_tail(state_dir() / "console.log", lines)


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
    _tap_down()
    (state_dir() / "known_hosts").unlink(missing_ok=True)
    (state_dir() / PRISTINE).unlink(missing_ok=True)


def _monitor(command: str, timeout: float = 600) -> None:
    """Run a human monitor command (savevm, loadvm) through QEMU's QMP socket; its output is
    empty on success, and an error otherwise."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(state_dir() / "qmp.sock"))
        stream = sock.makefile("rwb")

        def call(execute: str, **arguments: str) -> object:
            stream.write(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
            stream.flush()
            while True:
                line = stream.readline()
                if not line:
                    raise LabError(f"{NAME}: QEMU closed its monitor during {execute}")
                reply = json.loads(line)
                if "event" not in reply:  # events (STOP, RESUME) may come first
                    if "error" in reply:
                        raise LabError(f"{NAME}: QEMU refused {execute}: {reply['error']}")
                    return reply.get("return")

        stream.readline()  # the greeting
        call("qmp_capabilities")
        output = call("human-monitor-command", **{"command-line": command})
    if output:
        raise LabError(f"{NAME}: {command} failed: {str(output).strip()}")


def save_pristine() -> None:
    """Save the running guest's whole state as the pristine snapshot (the guest is paused
    meanwhile: its clock falls behind by that long, which the caller corrects)."""
    _monitor(f"savevm {PRISTINE}")
    (state_dir() / PRISTINE).write_text(f"{time.time()}\n")


def has_pristine() -> bool:
    return running() and (state_dir() / PRISTINE).exists()


def load_pristine() -> None:
    """Back to the saved pristine state: memory, devices and both disks (its clock then is the
    snapshot's, which the caller corrects)."""
    _monitor(f"loadvm {PRISTINE}")
