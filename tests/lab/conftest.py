"""Lab integration tests: they bring the lab up once per session (root only) and use real hosts.

The SELinux guest (a QEMU VM under TCG: about a minute to boot) serves two modules; it boots
once for both, and its tests run last so that no other test sees it in the inventory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from walguard.lab import manage, selinux_guest, settings
from walguard.lab.hosts import Host

if TYPE_CHECKING:
    from tests.lab.test_selinux_guest import Guest

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


# The guest's own story runs first: it ends with a reset, which leaves the guest pristine for the
# audits on it, so the two modules need one boot between them, not two.
GUEST_MODULES = ("test_selinux_guest.py", "test_selinux_audit.py")


def _uses(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected what will not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the SELinux guest last, in one stretch, in GUEST_MODULES order (the others
    keep their order)."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        if not _uses(item, "guest"):
            return (0, 0)
        name = item.path.name
        return (1, GUEST_MODULES.index(name) if name in GUEST_MODULES else len(GUEST_MODULES))

    items.sort(key=rank)  # stable


@pytest.fixture(scope="session")
def guest(lab: Lab) -> Iterator[Guest]:
    """selinux1, pristine when first used. It is booted with `walguard lab up --hosts N
    --selinux` (N: the lab fixture's hosts, which that leaves as they are) and stopped at the end
    with `walguard lab up --hosts N`; its tests run last (pytest_collection_modifyitems)."""
    from tests.lab.test_selinux_guest import Guest

    count = str(len(lab.hosts))
    before = selinux_guest.qemu_pid()
    lab.walguard("lab", "up", "--hosts", count, "--selinux")
    if before is not None and before == selinux_guest.qemu_pid():
        # It was already up (and may have been fixed by an earlier run): start from pristine.
        lab.walguard("lab", "scenario", "reset", selinux_guest.NAME)
    yield Guest(lab)
    lab.walguard("lab", "up", "--hosts", count)
