"""Before pytest judges: the selected hosts' facts, collected many at once (walguard.facts.fanout)
in the process that judges them, with a status line on a terminal (walguard.audit.progress).

Selection is pytest's: only hosts with at least one item left after `-k`/`-m` are contacted, and
the zone probes only when a selected control reads them. Under pytest-xdist each worker learns
its hosts one at a time, so workers collect lazily (walguard.audit.items.FactsCache.get) instead.
"""

from __future__ import annotations

import os

import pytest

from walguard.audit.items import ControlItem, FactsCache
from walguard.audit.progress import Progress, Terminal
from walguard.facts.fanout import DEFAULT_FORKS, forks_value
from walguard.inventory.load import Target

FORKS_ENV = "WALGUARD_FORKS"


def forks_option(config: pytest.Config) -> int:
    """`--forks`, else WALGUARD_FORKS, else the default; a bad value is a usage error (before
    any host is touched)."""
    given = config.getoption("forks")
    source = given if given is not None else os.environ.get(FORKS_ENV) or DEFAULT_FORKS
    try:
        return forks_value(source)
    except ValueError as exc:
        where = "" if given is not None else f" (from {FORKS_ENV})"
        raise pytest.UsageError(f"{exc}{where}") from None


def will_run(session: pytest.Session) -> bool:
    """Whether pytest's loop will run the items: not for --collect-only, not after collection
    errors (pytest stops there)."""
    option = session.config.option
    if option.collectonly:
        return False
    return not (session.testsfailed and not option.continue_on_collection_errors)


def prefetch(
    items: list[pytest.Item], cache: FactsCache, forks: int, terminal: Terminal | None
) -> None:
    """Collects the facts of every host the selected items judge, `forks` at a time, and
    returns when every host has ended (collected, or its ERROR recorded)."""
    controls = [i for i in items if isinstance(i, ControlItem)]
    targets: dict[str, Target] = {}
    for item in controls:
        targets.setdefault(item.target.name, item.target)
    if not targets:
        return
    progress = Progress(terminal, len(targets))
    try:
        fanout = cache.prefetch(
            list(targets.values()),
            forks=forks,
            zones=any(i.reads_zones for i in controls),
            on_done=progress.host_done,
        )
        fanout.wait()
    except BaseException:
        # An interrupt can land the moment the first thread starts its ssh, before wait() is
        # reached: the connections are ended from here too, or the threads would keep the
        # process alive until the hosts' own timeouts (an hour, for some inventories).
        cache.cancel()
        raise
    finally:
        progress.clear()
