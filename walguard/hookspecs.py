"""Hooks a bank's own conftest.py or pytest plugin may implement to add to a walguard run: its own
evidence files per host, and its own sections of report.html. walguard.plugin registers them
(`pytest_addhooks`). An implementation is an ordinary pytest hook function (their names begin
with `pytest_`, as pytest takes no other name for a hook), e.g. in the conftest.py beside the
user's controls (`--checks DIR`) or in a plugin given with `-p`:

    def pytest_walguard_host_evidence(host, facts):
        return [("cmdb.txt", cmdb_record(host))]

    def pytest_walguard_report_sections(run):
        return [("Change window", "CHG-1234, approved by ...")]

Neither can change a verdict. What they return is written as given and shown escaped, never as
markup; a file name that is not one plain file name is refused (walguard.report.evidence_files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from walguard.facts.host import HostFacts


@pytest.hookspec
def pytest_walguard_host_evidence(
    host: str, facts: HostFacts
) -> list[tuple[str, str | bytes]] | None:
    """Extra evidence files for one database host, called once per host as its facts are
    collected (on the process that collects them: an xdist worker, or the fan-out's threads, so
    keep it thread-safe). `facts` is what walguard collected, with the raw outputs still in it;
    for a host that could not be reached, `facts.reachable` is False and `facts.error` says why.

    Return (name, text) pairs: each is written to `evidence/<host>/extra/<name>`, covered by the
    signed manifest. `name` must be one plain file name (letters, digits, `.`, `_`, `-`, not
    starting with a dot, at most 100 characters) and unique among every implementation's;
    anything else is refused and the refusal written to `evidence/<host>/extra.refused.txt`."""


@pytest.hookspec
def pytest_walguard_report_sections(run: dict[str, Any]) -> list[tuple[str, str]] | None:
    """Extra titled sections of report.html, called once on the controller when the run ends.
    `run` is the run's results.json document as built so far (read it; do not change it).

    Return (title, text) pairs: they are recorded in results.json (`sections`, so a page written
    again from it shows them too) and shown in report.html after the summary, as plain text in
    the order given."""
