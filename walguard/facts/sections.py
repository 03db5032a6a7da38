"""Splitting the collector's output into its framed sections."""

from __future__ import annotations

import re
from dataclasses import dataclass

from walguard.errors import FactUnavailable


@dataclass(frozen=True)
class Section:
    name: str
    output: str
    rc: int
    duration_s: float | None = None  # when the END line carries end and start times


def split_sections(raw: str, token: str) -> dict[str, Section]:
    """Parse `TOKEN BEGIN name` ... `TOKEN END name rc` frames. A section without its END line
    (output cut short) is missing, not empty: its facts become ERROR."""
    sections: dict[str, Section] = {}
    begin = re.compile(rf"^{re.escape(token)} BEGIN (\S+)$")
    end = re.compile(rf"^{re.escape(token)} END (\S+) (\d+)(?: ([\d.]+) ([\d.]+))?$")
    current: str | None = None
    lines: list[str] = []
    for line in raw.split("\n"):
        if m := begin.match(line):
            current, lines = m.group(1), []
        elif current is not None and (m := end.match(line)) and current == m.group(1):
            # The collector prints a newline before END so unterminated output stays on its line.
            body = "\n".join(lines)
            duration = round(float(m.group(3)) - float(m.group(4)), 3) if m.group(3) else None
            sections[current] = Section(
                current, body[:-1] if body.endswith("\n") else body, int(m.group(2)), duration
            )
            current = None
        elif current is not None:
            lines.append(line)
    return sections


def need(sections: dict[str, Section], name: str) -> Section:
    try:
        return sections[name]
    except KeyError:
        raise FactUnavailable(f"collector output has no complete '{name}' section") from None
