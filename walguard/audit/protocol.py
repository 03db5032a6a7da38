"""How pytest runs a control item: a lean form of its runtest protocol.

An audit is an item per host and control, thousands of them, and each is a lookup and a pure
function of facts collected before the first item: no fixtures, no setup or teardown of its
own, no output. pytest's full protocol wraps three phases of every item in its plugins' hooks
(capture, skipping, fixtures) and builds a CallInfo and a report for each phase; at 300 hosts
that was most of what judging cost. Here the call phase alone goes through
pytest_runtest_makereport (walguard's own wrapper records the verdict and applies waivers there;
skipping and other plugins see it as usual), and the setup and teardown phases, which can do
nothing for a control, are reported as passed without being called. Every report still reaches
pytest_runtest_logreport, so the terminal, junit, -x/--maxfail and xdist see what they always
saw: three reports per item.

A run that asks for pytest's interactive or setup-tracing options gets the full protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pytest
from _pytest.outcomes import Exit
from _pytest.runner import CallInfo

if TYPE_CHECKING:
    from walguard.audit.items import ControlItem

# pytest options under which an item must go through the full protocol.
_FULL_PROTOCOL = ("usepdb", "trace", "setuponly", "setupplan", "setupshow")


def lean(config: pytest.Config) -> bool:
    """Whether control items may take the lean protocol in this run."""
    return not any(config.getoption(name, False) for name in _FULL_PROTOCOL)


def run(item: ControlItem, nextitem: pytest.Item | None) -> None:
    """pytest_runtest_protocol for one control item."""
    ihook = item.ihook
    nodeid, location = item.nodeid, item.location
    ihook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    call = CallInfo.from_call(item.runtest, when="call", reraise=(Exit, KeyboardInterrupt))
    report: pytest.TestReport = ihook.pytest_runtest_makereport(item=item, call=call)
    ihook.pytest_runtest_logreport(report=_passed(report, "setup", call.start))
    ihook.pytest_runtest_logreport(report=report)
    session = item.session
    if session.shouldfail or session.shouldstop:
        nextitem = None
    # What an earlier item of another kind set up (a bank's own test function beside the
    # controls) is torn down where pytest would do it: when the next item does not need it.
    state = getattr(session, "_setupstate", None)
    if state is not None and state.stack:
        state.teardown_exact(nextitem)
    ihook.pytest_runtest_logreport(report=_passed(report, "teardown", call.stop))
    ihook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def _passed(
    call: pytest.TestReport, when: Literal["setup", "teardown"], at: float
) -> pytest.TestReport:
    """A phase that has nothing to do for a control, reported as pytest reports it."""
    return pytest.TestReport(
        call.nodeid,
        call.location,
        call.keywords,
        "passed",
        None,
        when,
        duration=0.0,
        start=at,
        stop=at,
    )
