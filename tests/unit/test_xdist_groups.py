"""pytest 9.2 with xdist 3.8 silently ignored xdist_group under --dist loadgroup (xdist issue 1386).

walguard relies on loadgroup to keep one host's controls on one worker (one fact collection per
host); this test fails if the installed pytest/xdist pair ever spreads a group across workers.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GROUPED = """
import os, pathlib, pytest

def _record(group, i):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    pathlib.Path("seen", f"{group}.{i}.{worker}").touch()

@pytest.mark.xdist_group("host-a")
@pytest.mark.parametrize("i", range(6))
def test_a(i):
    _record("host-a", i)

@pytest.mark.xdist_group("host-b")
@pytest.mark.parametrize("i", range(6))
def test_b(i):
    _record("host-b", i)
"""


def test_loadgroup_keeps_each_group_on_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grouped=GROUPED)
    (pytester.path / "seen").mkdir()
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "xdist")
    result.assert_outcomes(passed=12)
    workers: dict[str, set[str]] = {}
    for seen in (pytester.path / "seen").iterdir():
        group, _, worker = seen.name.split(".")
        workers.setdefault(group, set()).add(worker)
    assert set(workers) == {"host-a", "host-b"}
    assert all(len(w) == 1 for w in workers.values()), workers
