"""The one small interface every kind of lab host implements (nspawn database hosts, the zones'
probe hosts, the QEMU SELinux guest), and what they share: keys, pid files, the SSH command line.

`manage` works through `LabHost` only, so adding a kind of host adds one module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from walguard.lab import settings
from walguard.lab.proc import run


class LabHost(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def ssh_port(self) -> int: ...

    def running(self) -> bool: ...

    def start(self) -> None:
        """Boot (building what it needs once); returns before the host is ready."""

    def wait_ready(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Back to pristine (throwing away every change a scenario made), ready again."""

    def destroy(self) -> None:
        """Stop and forget this lab's state of the host (its keys stay with the lab key)."""

    def known_hosts_lines(self) -> list[str]: ...

    def ssh_argv(self, command: list[str]) -> list[str]: ...

    def run_as_root(self, argv: list[str], input_text: str) -> subprocess.CompletedProcess[str]:
        """Run a command as root inside the host (how scenarios are applied)."""

    def evidence(self) -> str:
        """The last lines of the host's console, for errors about it."""

    def record_scenario(self, name: str) -> None: ...

    def applied_scenarios(self) -> list[str]: ...


def lab_key() -> Path:
    """The audit user's SSH key for this lab (made once per lab, never part of an image)."""
    key = settings.STATE_DIR / "id_ed25519"
    if not key.exists():
        settings.STATE_DIR.mkdir(parents=True, exist_ok=True)
        keygen(key, "walguard-lab-audit")
    return key


def known_hosts_path() -> Path:
    return settings.STATE_DIR / "known_hosts"


def keygen(path: Path, comment: str) -> None:
    """A new ed25519 key pair at `path` (and `path`.pub), without a passphrase."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def pid_from_file(pid_file: Path, is_ours: Callable[[list[bytes]], bool]) -> int | None:
    """The pid recorded in `pid_file` if that process still runs and is ours (a stale file or a
    reused pid is not)."""
    try:
        pid = int(pid_file.read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if is_ours(argv) else None


def ssh_argv(
    address: str,
    command: list[str],
    *,
    port: int = 22,
    known_hosts: Path | None = None,
    connect_timeout: int = 10,
) -> list[str]:
    """Log in as the audit user with strict host-key checking against the lab's known_hosts."""
    return [
        "ssh",
        "-i",
        str(lab_key()),
        "-p",
        str(port),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts or known_hosts_path()}",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        "-o",
        "BatchMode=yes",
        f"{settings.AUDIT_USER}@{address}",
        *command,
    ]


def console_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "no console output"
    tail = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(tail) or "no console output"
