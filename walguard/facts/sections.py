"""Framed sections: the one parser of `TOKEN BEGIN name` ... `TOKEN END name rc` output.

The collector prints every fact as such a section (so do the zone probes and the remediation
scripts' runs). The same parser reads it when the facts are collected and again when the report
cites `collector.txt`: each section keeps the line range of its body in the output, so that a
reference names lines of the signed file itself.

The names of the sections a control may read are walguard.fact_names (below the controls, which
check their declarations against them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from walguard.errors import FactUnavailable
from walguard.fact_names import COLLECTOR_SECTIONS as COLLECTOR_SECTIONS
from walguard.fact_names import POSTGRES_KEYS as POSTGRES_KEYS
from walguard.fact_names import known_read as known_read

# A section's frame token: random per run (`@@WG-`, 16 hex digits, `@@`); only a line with this
# run's token frames a section, so nothing a file or command prints can forge a boundary.
_TOKEN = re.compile(r"^(@@WG-[0-9A-Za-z]+@@) BEGIN \S+$")
# What follows `TOKEN BEGIN ` and `TOKEN END ` on a frame line.
_NAME = re.compile(r"\S+")
_END = re.compile(r"(\S+) (\d+)(?: ([\d.]+) ([\d.]+))?")


@dataclass(frozen=True)
class Section:
    name: str
    output: str
    rc: int
    duration_s: float | None = None  # when the END line carries end and start times
    # The body's first and last line in the framed output, 1-based (an empty body: the blank
    # line the collector prints before END).
    first_line: int = 0
    last_line: int = 0


def split_sections(raw: str, token: str) -> dict[str, Section]:
    """Parse `TOKEN BEGIN name` ... `TOKEN END name rc` frames. A section without its END line
    (output cut short) is missing, not empty: its facts become ERROR. A line framed with
    another token, or an END naming another section, is the section's text."""
    sections: dict[str, Section] = {}
    # Plain prefix tests first and fixed patterns after them: a pattern made from each run's
    # token would be compiled anew for every host, and most lines are no frame at all.
    begin, end = f"{token} BEGIN ", f"{token} END "
    current: str | None = None
    started = 0
    lines: list[str] = []
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.startswith(token):
            if current is not None:
                lines.append(line)
            continue
        if line.startswith(begin) and _NAME.fullmatch(line, len(begin)):
            current, started, lines = line[len(begin) :], number, []
        elif (
            current is not None
            and line.startswith(end)
            and (m := _END.fullmatch(line, len(end)))
            and current == m.group(1)
        ):
            # The collector prints a newline before END so unterminated output stays on its line.
            if lines and lines[-1] == "":
                lines.pop()
            duration = round(float(m.group(3)) - float(m.group(4)), 3) if m.group(3) else None
            sections[current] = Section(
                current,
                "\n".join(lines),
                int(m.group(2)),
                duration,
                started + 1,
                started + max(len(lines), 1),
            )
            current = None
        elif current is not None:
            lines.append(line)
    return sections


def token_of(raw: str) -> str | None:
    """The frame token of saved output (evidence/HOST/collector.txt): the one its first line, the
    first section's BEGIN, carries (the collector prints nothing before it); None for output that
    does not start with a frame."""
    m = _TOKEN.match(raw.split("\n", 1)[0])
    return m.group(1) if m else None


def need(sections: dict[str, Section], name: str) -> Section:
    try:
        return sections[name]
    except KeyError:
        raise FactUnavailable(f"collector output has no complete '{name}' section") from None
