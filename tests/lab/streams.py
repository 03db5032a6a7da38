"""The streams of lab tests: the database hosts' tests, the SELinux guest's, and the tests on a
second set of database hosts beside the lab's (the `beside` fixture). tests/conftest.py makes them
two xdist groups, one per worker: the database hosts' stream, and the guest's followed by the
one beside (the guest stops before those hosts boot); tests/lab/conftest.py orders them and keeps
what changes the lab alone. A support module."""

from __future__ import annotations

import pytest

LAB, GUEST, BESIDE = "lab", "guest", "beside"
# The guest's story runs first: it ends with a reset, which leaves the guest pristine for the
# audits on it, so the two modules need one boot between them, not two.
GUEST_MODULES = ("test_selinux_guest.py", "test_selinux_audit.py")
# Modules whose tests run `walguard lab up` (without --selinux: it stops the guest) or `lab down`.
EXCLUSIVE_MODULES = ("test_lab_hosts.py", "test_lab_lifecycle.py")


def exclusive(item: pytest.Item) -> bool:
    """A test that changes the lab itself (a `lab up` or `lab down`): run last, alone."""
    marked = item.get_closest_marker("lab_exclusive") is not None
    return marked or item.path.name in EXCLUSIVE_MODULES


def stream(item: pytest.Item) -> str:
    """The stream a lab test is in: the guest's when it uses the guest, the one beside when it
    uses the hosts beside the lab (and is not exclusive)."""
    fixtures = getattr(item, "fixturenames", ())
    if exclusive(item):
        return LAB
    if "guest" in fixtures:
        return GUEST
    return BESIDE if "beside" in fixtures else LAB


def worker_group(item: pytest.Item) -> str:
    """The xdist group of a lab test: the database hosts' stream has a worker of its own; the
    guest's and the one beside share the other, in that order."""
    return LAB if stream(item) == LAB else GUEST
