"""The whole suite: the lab tests (tests/lab) are told apart by their marker and run as two
xdist groups.

Every module under tests/lab carries the `lab` marker (collection refuses one that does not), so
`-m "not lab"` leaves exactly the tests that need no lab. Under xdist (`make test` runs the
whole suite with `-n 2 --dist loadgroup`) every lab test joins its stream's group
(tests/lab/streams.py): `lab`, the database hosts' tests, which one worker runs in order, one at
a time, since those hosts are one shared thing; and `guest`, the SELinux guest's tests and then
those on the database hosts beside the lab, which the other worker runs meanwhile; the unit
tests go to whichever worker is free.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# The lab tests' support modules assert too (what pristine means, each scenario's effect): their
# failures say what they found, as the tests' own do.
pytest.register_assert_rewrite("tests.lab.support", "tests.lab.scenario_effects")

from tests.lab.streams import worker_group  # noqa: E402

LAB_DIR = Path(__file__).resolve().parent / "lab"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/lab must be marked `lab` (one left unmarked would run in a
    `-m "not lab"` selection and fail there for want of a lab), and joins its stream's xdist
    group."""
    unmarked = sorted(
        {
            item.path.name
            for item in items
            if _is_lab(item) and item.get_closest_marker("lab") is None
        }
    )
    if unmarked:
        raise pytest.UsageError(
            f"lab test modules without `pytestmark = pytest.mark.lab`: {', '.join(unmarked)}"
        )
    for item in items:
        if _is_lab(item):
            item.add_marker(pytest.mark.xdist_group(worker_group(item)))


def _is_lab(item: pytest.Item) -> bool:
    return LAB_DIR in item.path.parents
