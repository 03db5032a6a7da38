"""The SELinux guest as the lab tests drive it: `Guest`, one SSH master connection to selinux1
and the audit of the inventory that lists it. A support module (conftest.py's `guest` fixture
makes it; the guest's test modules use it)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.support import Lab
from walguard.lab import selinux_guest

WAIT_S = 120


POLL_S = 0.5


def _control_path() -> Path:
    return Path(tempfile.gettempdir()) / f"walguard-{selinux_guest.NAME}-{os.getpid()}.ssh"


@dataclass(frozen=True)
class Guest:
    lab: Lab
    inventory: Path  # the guest's own: the guest and the zones' probe hosts (conftest.py)
    control_path: Path = field(default_factory=_control_path)

    def ssh(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell command on selinux1 as the audit user (real SSH, strict host keys),
        over the tests' master connection (opened by the first command, kept for a minute)."""
        argv = selinux_guest.ssh_argv([command])
        mux = [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            "ControlPersist=60",
            # A master whose guest went away (a reset elsewhere) gives up instead of hanging.
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=2",
        ]
        done = subprocess.run(
            [argv[0], *mux, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode == 255 and not selinux_guest.running():
            raise AssertionError(
                f"{selinux_guest.NAME} is not running: was `walguard lab up` (without --selinux) "
                "or `walguard lab down` run elsewhere meanwhile?"
            )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ssh {selinux_guest.NAME} {command!r} failed ({done.returncode}): {done.stderr}"
            )
        return done

    def close(self) -> None:
        """Close the master connection (before the guest it leads to goes away)."""
        subprocess.run(
            ["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", "_"],
            capture_output=True,
            timeout=30,
            check=False,
        )

    def reset(self) -> None:
        """`walguard lab scenario reset selinux1`, as a user resets it."""
        self.close()
        self.lab.walguard("lab", "scenario", "reset", selinux_guest.NAME)

    def psql(self, sql: str) -> str:
        """Run SQL as the audit user's role (peer auth; pg_monitor reads the settings and the
        archiver, and it may switch WAL), as the audit itself reads the server: no sudo, which
        costs the emulated guest half a second a call."""
        quoted = sql.replace("'", "'\\''")
        return self.ssh(f"psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c '{quoted}'").stdout

    def archiver(self) -> dict[str, str]:
        row = self.psql(
            "SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), "
            "coalesce(last_failed_wal, '') FROM pg_stat_archiver"
        )
        names = ("archived_count", "failed_count", "last_archived_wal", "last_failed_wal")
        return dict(zip(names, row.strip().split("|"), strict=True))

    def switch_wal(self) -> str:
        """Write a commit record and switch: return the name of the segment just closed (two
        -c: two transactions, so the commit is in the segment that is switched)."""
        out = self.ssh(
            "psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c 'SELECT txid_current()' "
            "-c 'SELECT pg_walfile_name(pg_switch_wal())'"
        ).stdout
        return out.split()[-1]

    def avc_denials(self) -> list[str]:
        done = self.ssh("sudo -n ausearch --input-logs -m avc -su postgresql_t --raw", check=False)
        return [ln for ln in done.stdout.splitlines() if "avc:" in ln and "denied" in ln]

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{selinux_guest.NAME}: {what} not within {timeout:.0f} s")
            time.sleep(POLL_S)
