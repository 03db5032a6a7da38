"""Lab integration tests: they bring the lab up once per session (root only) and use real hosts.

Two streams, one xdist worker each (tests/conftest.py groups them): the database hosts' tests
(group `lab`) and the SELinux guest's (group `guest`: a QEMU VM under TCG, about a minute to
boot, minutes for its tests), which never touch what the other stream uses. The guest is audited
through an inventory of its own (the guest and the zones' probe hosts), so inventories/lab.yml
stays as the database hosts' tests expect it; its key joins the lab's known_hosts when it boots.

What changes the lab itself (`walguard lab up` or `lab down`, which stop the guest or every
host: tests/lab/streams.py's EXCLUSIVE_MODULES and tests marked `lab_exclusive`) runs last in
the `lab` stream, and alone: every worker holds the lab tests' lock shared for its session, and
such a test takes it exclusively, so it waits until the guest's stream has ended.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from tests.lab.streams import BESIDE, GUEST, GUEST_MODULES, exclusive, stream
from tests.lab.support import HOST_COUNT, Lab
from walguard.lab import inventory, manage, selinux_guest, settings
from walguard.lab.hosts import Host

if TYPE_CHECKING:
    from tests.lab.guest_support import Guest

# Shared by every worker's session, exclusive for what changes the lab (see above); and the
# short mutex under which a worker finds the lab up or brings it up.
SHARED_LOCK = Path(tempfile.gettempdir()) / "walguard-lab-tests.lock"
UP_LOCK = Path(tempfile.gettempdir()) / "walguard-lab-tests-up.lock"


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The guest's tests in GUEST_MODULES order, then those beside the lab, and what changes the
    lab last (the tests that need the guest running first among them, before a `lab up` stops
    it); the others keep their order."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        if exclusive(item):
            # Marked ones (they need the guest still running) before the modules' `lab up`s.
            return (2, 0 if item.get_closest_marker("lab_exclusive") else 1)
        if stream(item) == GUEST:
            name = item.path.name
            return (1, GUEST_MODULES.index(name) if name in GUEST_MODULES else len(GUEST_MODULES))
        if stream(item) == BESIDE:  # after the guest's: its worker has stopped the guest by then
            return (1, len(GUEST_MODULES) + 1)
        return (0, 0)

    items.sort(key=rank)  # stable
    # The guest's stream, to stop the guest once it has ended (pytest_runtest_teardown): kept
    # only when nothing else selected needs it running (a test marked lab_exclusive).
    _GUEST_LEFT.clear()
    if not any(item.get_closest_marker("lab_exclusive") for item in items):
        _GUEST_LEFT.update(i.nodeid for i in items if stream(i) == GUEST)


# The guest's tests not yet run in this process (they all run in one: their xdist group).
_GUEST_LEFT: set[str] = set()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the guest's last test, the guest stops: under TCG an idle VM still takes a good
    part of a core, which the database hosts' stream (CPU-bound on this 2-core machine) needs
    for the rest of the run."""
    if item.nodeid not in _GUEST_LEFT:
        return
    _GUEST_LEFT.discard(item.nodeid)
    if not _GUEST_LEFT and selinux_guest.running():
        manage.stop_guest()


def _locked(path: Path, mode: int) -> IO[str]:
    handle = path.open("a")
    fcntl.flock(handle, mode)
    return handle


def _lab_is_up(count: int) -> bool:
    """Exactly the probe hosts and `count` database hosts run, and their inventory is there,
    without the guest (which `lab up --selinux` would have put in)."""
    wanted = {*settings.probe_names(), *settings.host_names(count)}
    running = {h.name for h in manage.running_hosts()}
    path = settings.INVENTORY_PATH
    return running == wanted and path.exists() and selinux_guest.NAME not in path.read_text()


@pytest.fixture(scope="session")
def lab_lock() -> Iterator[IO[str]]:
    """This worker's shared hold on the lab tests' lock, for its whole session."""
    handle = _locked(SHARED_LOCK, fcntl.LOCK_SH)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def lab(lab_lock: IO[str]) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail(
            "the lab integration tests need root (they boot containers); run `make test` as root"
        )
    lab = Lab([Host(name) for name in settings.host_names(HOST_COUNT)])
    # Up once, by whichever worker comes first: a second `lab up` (without --selinux) would
    # stop a guest the other worker has booted meanwhile.
    with _locked(UP_LOCK, fcntl.LOCK_EX):
        if not _lab_is_up(HOST_COUNT):
            lab.walguard("lab", "up", "--hosts", str(HOST_COUNT))
    yield lab
    # The lab stays up for the next run (`.ci/run` and `walguard lab down` tear it down).


@pytest.fixture(autouse=True)
def _alone_if_exclusive(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that changes the lab itself runs while no other worker holds the lab."""
    item = request.node
    if not isinstance(item, pytest.Item) or not exclusive(item):
        yield
        return
    handle: IO[str] = request.getfixturevalue("lab_lock")
    fcntl.flock(handle, fcntl.LOCK_EX)  # this worker's shared hold becomes exclusive
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_SH)


@pytest.fixture(scope="session")
def guest(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    """selinux1, pristine when first used, with an inventory of its own (the guest and the
    zones' probe hosts). Booted here if it is not running (manage.boot_guest holds only the
    guest's lock: the database hosts' stream goes on meanwhile); one left running by an earlier
    session (and perhaps fixed by it) is reset to pristine. It stays up afterwards: a `walguard
    lab up` without --selinux stops it (the exclusive tests at the end, or the next session)."""
    from tests.lab.guest_support import Guest

    # Not under UP_LOCK: the other worker would wait the boot out before its first test. The lab
    # is up by now (the lab fixture), so that worker's lab fixture leaves it (and the guest) be.
    booted = manage.boot_guest()
    if booted is None:
        lab.walguard("lab", "scenario", "reset", selinux_guest.NAME)
    probes = [Host(name) for name in settings.probe_names()]
    path = tmp_path_factory.mktemp("guest") / "inventory.yml"
    yield Guest(lab, inventory=inventory.write_inventory(probes, path, guest=True))


# How many database hosts the `beside` fixture boots beside the lab's (as many: the break-and-fix
# batches are as wide as the lab).
BESIDE_COUNT = HOST_COUNT


@pytest.fixture(scope="session")
def beside(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second set of database hosts (db4 to db6), pristine, with an inventory of their own
    (they and the zones' probe hosts): the tests on them run in the guest's worker after the
    guest's, beside the database hosts' stream, and never see the lab's hosts nor are seen by
    their audits. Booted when first used, removed at the end of the session."""
    names = settings.host_names(HOST_COUNT + BESIDE_COUNT)[HOST_COUNT:]
    path = tmp_path_factory.mktemp("beside") / "inventory.yml"
    manage.boot_beside(names, path)
    yield Lab([Host(name) for name in names], inventory=path)
    manage.remove_beside(names)
