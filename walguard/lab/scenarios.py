"""Break/fix scenarios: named, documented ways to break one lab host in one way.

Each scenario is lab/scenarios/NAME.sh, run as root inside the host. Its header says what it
breaks and what one can observe afterwards:
    # breaks: ...
    # observe: ...
Resetting is the same for every scenario: the host goes back to its pristine layer (hosts.reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from walguard.lab import settings


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    breaks: str
    observe: str


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
            path.stem, path, _header_field(text, "breaks"), _header_field(text, "observe")
        )
    return found
