"""Break/fix scenarios: named, documented ways to break one lab host in one way.

Each scenario is lab/scenarios/NAME.sh, run as root inside the host. Its header says what it
breaks and what one can observe afterwards, and may name a base: another scenario it is built
on, applied first unless the host has it already (pgbackrest-broken breaks what
pgbackrest-archiving set up, so it says `# base: pgbackrest-archiving` instead of repeating it):
    # breaks: ...
    # observe: ...
    # base: NAME
    # may-fail: WG-XXX-NNN ...: why (controls that may FAIL too, as a consequence in time)
    # wait: archiver-failure (the break shows once the archiver has failed: the tests wait)
A control's declaration names the scenarios that must make it FAIL (walguard.controls); these
headers say the rest of what the break-and-fix tests need to know.
Resetting is the same for every scenario: the host goes back to its pristine layer (hosts.reset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from walguard.lab import settings
from walguard.lab.errors import LabError


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    breaks: str
    observe: str
    base: str | None = None  # the scenario this one is applied on top of
    may_fail: tuple[str, ...] = ()  # controls that may FAIL as well (a consequence in time)
    wait: str | None = None  # what the tests wait for before judging ("archiver-failure")


CONTROL_ID = re.compile(r"WG-[A-Z]{3}-[0-9]{3}")
WAITS = ("archiver-failure",)


def _header_field(text: str, field: str) -> str:
    parts = []
    collecting = False
    for line in text.splitlines():
        if not line.startswith("#"):
            if collecting:
                break
            continue
        body = line[1:].strip()
        if body.startswith(f"{field}:"):
            collecting = True
            parts.append(body.split(":", 1)[1].strip())
        elif collecting and line.startswith("#  ") and body:
            # Continuation lines are indented; a word ending in ':' there is just text.
            parts.append(body)
        elif collecting:
            break
    return " ".join(parts)


def all_scenarios(directory: Path = settings.SCENARIO_DIR) -> dict[str, Scenario]:
    found = {}
    for path in sorted(directory.glob("*.sh")):
        text = path.read_text()
        found[path.stem] = Scenario(
            path.stem,
            path,
            _header_field(text, "breaks"),
            _header_field(text, "observe"),
            _header_field(text, "base") or None,
            tuple(CONTROL_ID.findall(_header_field(text, "may-fail").split(": ", 1)[0])),
            _header_field(text, "wait").split(" ", 1)[0] or None,
        )
    for name, sc in found.items():
        chain(found, name)  # every base exists and none leads back to itself
        if sc.wait is not None and sc.wait not in WAITS:
            raise LabError(f"scenario {name}: unknown wait {sc.wait!r} (known: {', '.join(WAITS)})")
    return found


def chain(scenarios: dict[str, Scenario], name: str) -> list[str]:
    """The scenarios to apply for `name`, its deepest base first and itself last."""
    order = [name]
    while (base := scenarios[order[-1]].base) is not None:
        if base not in scenarios:
            raise LabError(f"scenario {order[-1]}: its base {base!r} is not a scenario")
        if base in order:
            raise LabError(f"scenario {name}: its bases lead back to {base}")
        order.append(base)
    return order[::-1]
