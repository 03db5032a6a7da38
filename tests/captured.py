"""Collector-style output captured on the lab (tests/unit/data/), split into its framed sections
as walguard reads it."""

from __future__ import annotations

import re
from pathlib import Path

from walguard.facts.sections import Section, split_sections

DATA = Path(__file__).parent / "unit" / "data"


def captured_sections(name: str) -> dict[str, Section]:
    """The sections of a capture, framed by the token its first BEGIN line carries."""
    text = (DATA / name).read_text()
    match = re.search(r"^(@@WG-[0-9A-Za-z]+@@) BEGIN", text, re.MULTILINE)
    assert match, f"{name} has no framed section"
    return split_sections(text, match.group(1))
