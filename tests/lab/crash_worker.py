"""A pytest plugin for one lab test: the xdist worker judging WG_TEST_CRASH_HOST dies (os._exit)
in the middle of that host's controls, as a worker killed by the OOM killer would."""

from __future__ import annotations

import os

import pytest


def pytest_runtest_call(item: pytest.Item) -> None:
    host = os.environ.get("WG_TEST_CRASH_HOST")
    target = getattr(item, "target", None)
    meta = getattr(item, "meta", None)
    if (
        host
        and os.environ.get("PYTEST_XDIST_WORKER")
        and target is not None
        and target.name == host
        and meta is not None
        and meta.id == os.environ.get("WG_TEST_CRASH_CONTROL", "WG-ARC-003")
    ):
        once = os.environ.get("WG_TEST_CRASH_ONCE")
        if once:
            if os.path.exists(once):
                return
            open(once, "w").close()
        os._exit(3)
