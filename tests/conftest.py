"""The whole suite: the lab tests (tests/lab) are told apart by their marker and run as two
xdist groups.

Every module under tests/lab carries the `lab` marker (collection refuses one that does not), so
`-m "not lab"` leaves exactly the tests that need no lab. Under xdist (`make test` runs the
whole suite with `-n 2 --dist loadgroup`) the lab tests on the database hosts join the group
`lab`: one worker runs them in order, one at a time, since those hosts are one shared thing.
The SELinux guest's tests (those that use the `guest` fixture) touch no database host and have
an inventory of their own: they are the group `guest`, which the other worker runs beside
them, with the unit tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parent / "lab"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/lab must be marked `lab` (one left unmarked would run in a
    `-m "not lab"` selection and fail there for want of a lab), and joins the xdist group
    `guest` when it uses the SELinux guest, else `lab`."""
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
            group = "guest" if "guest" in getattr(item, "fixturenames", ()) else "lab"
            item.add_marker(pytest.mark.xdist_group(group))


def _is_lab(item: pytest.Item) -> bool:
    return LAB_DIR in item.path.parents
