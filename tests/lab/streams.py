"""The two streams of lab tests (tests/conftest.py makes them xdist groups; tests/lab/conftest.py
orders them and keeps what changes the lab alone): the database hosts' tests and the SELinux
guest's. A support module."""

from __future__ import annotations

import pytest

LAB, GUEST = "lab", "guest"
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
    """The stream a lab test is in: the guest's when it uses the guest (and is not exclusive)."""
    on_guest = "guest" in getattr(item, "fixturenames", ())
    return GUEST if on_guest and not exclusive(item) else LAB
