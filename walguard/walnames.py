"""WAL segment file names: TTTTTTTTLLLLLLLLSSSSSSSS (timeline, log, segment), all hex."""

from __future__ import annotations

import re
from itertools import pairwise

SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def is_segment(name: str) -> bool:
    """A complete segment; .partial, .backup and .history files are not."""
    return bool(SEGMENT.match(name))


def timeline(name: str) -> int:
    return int(name[:8], 16)


def segment_number(name: str, segment_size: int) -> int:
    """The position of a segment in its timeline's sequence."""
    per_log = 0x100000000 // segment_size
    return int(name[8:16], 16) * per_log + int(name[16:24], 16)


def segment_name(tli: int, number: int, segment_size: int) -> str:
    per_log = 0x100000000 // segment_size
    return f"{tli:08X}{number // per_log:08X}{number % per_log:08X}"


def gaps(names: list[str], tli: int, segment_size: int) -> list[tuple[str, str]]:
    """Missing runs (first, last) between the oldest and newest archived segment of timeline tli."""
    numbers = sorted(
        segment_number(n, segment_size) for n in names if is_segment(n) and timeline(n) == tli
    )
    missing = []
    for prev, cur in pairwise(numbers):
        if cur - prev > 1:
            missing.append(
                (
                    segment_name(tli, prev + 1, segment_size),
                    segment_name(tli, cur - 1, segment_size),
                )
            )
    return missing
