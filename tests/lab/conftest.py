"""Lab integration tests: they bring the lab up once per session (root only) and use real hosts.

The SELinux guest (a QEMU VM under TCG: about a minute to boot) serves two modules; it boots
once for both, and its tests run last so that no other test sees it in the inventory. It boots
in the background while the other lab tests run (walguard.lab.manage.boot_guest holds only the
guest's lock and leaves the inventory alone), from the moment no test that would stop it
(a `lab up` or `lab down` without --selinux) is left to run before it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.lab.support import HOST_COUNT, Lab
from walguard.lab import selinux_guest, settings
from walguard.lab.hosts import Host

if TYPE_CHECKING:
    from tests.lab.guest_support import Guest


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
# Modules whose tests run `walguard lab up` or `lab down` without --selinux (which stops the guest).
GUEST_STOPPERS = ("test_lab_hosts.py", "test_lab_lifecycle.py")


@dataclass
class EarlyBoot:
    """The guest's boot, started in the background after the first lab test (whose `lab up`
    would stop a guest) or after the last test of GUEST_STOPPERS: the lab tests that run next
    overlap it."""

    after: str  # the node id of the test after which it starts
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    before: int | None = None  # the guest's QEMU pid before it started (None: not running)
    used: bool = False  # the guest fixture took it over (and stops the guest at the end)


EARLY_BOOT = pytest.StashKey[EarlyBoot]()


def _uses(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test on the SELinux guest last, in one stretch, in GUEST_MODULES order (the others
    keep their order); and the guest's boot starts in the background (EarlyBoot) once nothing
    that would stop it is left before its tests."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        if not _uses(item, "guest"):
            return (0, 0)
        name = item.path.name
        return (1, GUEST_MODULES.index(name) if name in GUEST_MODULES else len(GUEST_MODULES))

    items.sort(key=rank)  # stable
    first = next((i for i, item in enumerate(items) if _uses(item, "guest")), None)
    if first is None:
        return
    lab_tests = [item for item in items[:first] if _uses(item, "lab")]
    if not lab_tests:
        return  # the guest fixture boots it
    stoppers = [item for item in lab_tests if item.path.name in GUEST_STOPPERS]
    # Not before the first lab test, which brings the lab up (the lab fixture).
    after = stoppers[-1] if stoppers else lab_tests[0]
    config.stash[EARLY_BOOT] = EarlyBoot(after=after.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    early = item.config.stash.get(EARLY_BOOT, None)
    if early is not None and early.proc is None and item.nodeid == early.after:
        early.before = selinux_guest.qemu_pid()
        early.log = Path(tempfile.mkstemp(prefix="walguard-guest-boot-", suffix=".log")[1])
        with early.log.open("wb") as log:
            early.proc = subprocess.Popen(
                [sys.executable, "-c", "from walguard.lab import manage; manage.boot_guest()"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
    return result


def _early_boot_done(early: EarlyBoot) -> str:
    """Wait for the background boot; its output if it failed, "" if it succeeded."""
    assert early.proc is not None and early.log is not None
    try:
        rc = early.proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        early.proc.kill()
        rc = early.proc.wait()
    output = early.log.read_text(errors="replace")
    early.log.unlink(missing_ok=True)
    return "" if rc == 0 else f"exit {rc}: {output.strip()}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A session that ended before the guest's tests (-x, an interrupt) stops the guest it
    started booting: the lab is left as the other tests expect it."""
    early = session.config.stash.get(EARLY_BOOT, None)
    if early is not None and early.proc is not None and not early.used:
        early.used = True
        _early_boot_done(early)
        if early.before is None:
            subprocess.run(
                [sys.executable, "-m", "walguard.cli", "lab", "up", "--hosts", str(HOST_COUNT)],
                capture_output=True,
                timeout=300,
                check=False,
            )


@pytest.fixture(scope="session")
def guest(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Guest]:
    """selinux1, pristine when first used. It is booted in the background (EarlyBoot), or else
    here, and joins the lab's inventory with `walguard lab up --hosts N --selinux` (N: the lab
    fixture's hosts, which that leaves as they are); it is stopped at the end with `walguard lab
    up --hosts N`; its tests run last (pytest_collection_modifyitems)."""
    from tests.lab.guest_support import Guest

    count = str(len(lab.hosts))
    before = selinux_guest.qemu_pid()
    early = request.config.stash.get(EARLY_BOOT, None)
    if early is not None and early.proc is not None and not early.used:
        early.used = True
        before = early.before
        failed = _early_boot_done(early)
        if failed:
            lab.walguard("lab", "up", "--hosts", count, check=False)  # no half-booted guest left
            pytest.fail(f"booting {selinux_guest.NAME} in the background failed ({failed})")
    # Once booted early: nothing to boot, the guest joins the inventory.
    lab.walguard("lab", "up", "--hosts", count, "--selinux")
    if before is not None and before == selinux_guest.qemu_pid():
        # It was already up (and may have been fixed by an earlier run): start from pristine.
        lab.walguard("lab", "scenario", "reset", selinux_guest.NAME)
    yield Guest(lab)
    lab.walguard("lab", "up", "--hosts", count)
