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

A run that asks for pytest's interactive or setup-tracing options, or has a plugin of its own
that hooks a phase, gets the full protocol.
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
_PHASES = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown")
_LEAN = pytest.StashKey[bool]()


def lean(config: pytest.Config) -> bool:
    """Whether control items may take the lean protocol in this run: not when pytest's
    interactive or setup-tracing options ask for the phases, nor when a plugin other than
    pytest's own hooks a phase (a bank's plugin may rely on it). Decided at the first item,
    when every plugin (also a conftest.py beside the controls) is registered."""
    if _LEAN not in config.stash:
        config.stash[_LEAN] = not any(
            config.getoption(name, False) for name in _FULL_PROTOCOL
        ) and not phase_plugins(config)
    return config.stash[_LEAN]


def phase_plugins(config: pytest.Config) -> list[str]:
    """The plugins, other than pytest's own, that implement a runtest phase hook."""
    found = []
    for phase in _PHASES:
        for impl in getattr(config.hook, phase).get_hookimpls():
            module = getattr(impl.plugin, "__name__", None) or type(impl.plugin).__module__
            if not module.startswith("_pytest."):
                found.append(impl.plugin_name)
    return found


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
