"""Lab integration tests: they bring the lab up once per session (root only) and use real hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from walguard.lab import manage, settings
from walguard.lab.hosts import Host

HOST_COUNT = 3


@dataclass(frozen=True)
class Lab:
    hosts: list[Host]

    def ssh(
        self, host: Host, command: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host as the audit user (real SSH, strict host keys)."""
        done = subprocess.run(
            manage.ssh_argv(host, [command]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ssh {host.name} {command!r} failed ({done.returncode}): {done.stderr}"
            )
        return done

    def walguard(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real CLI, as a user would."""
        done = subprocess.run(
            [sys.executable, "-m", "walguard.cli", *args],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"walguard {' '.join(args)} failed: {done.stderr}")
        return done

    def reset_applied(self) -> None:
        """Reset, together, the hosts that have a scenario applied; a pristine host is left
        alone (a reset is a reboot)."""
        broken = [h.name for h in self.hosts if h.applied_scenarios()]
        if broken:
            self.walguard("lab", "scenario", "reset", *broken)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail(
            "the lab integration tests need root (they boot containers); run `make test` as root"
        )
    lab = Lab([Host(name) for name in settings.host_names(HOST_COUNT)])
    lab.walguard("lab", "up", "--hosts", str(HOST_COUNT))
    yield lab
    # The lab stays up for the next run (`.ci/run` and `walguard lab down` tear it down).
