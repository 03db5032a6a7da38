"""WAL segment file names: TTTTTTTTLLLLLLLLSSSSSSSS (timeline, log, segment), all hex."""

from __future__ import annotations

import re
from itertools import pairwise

SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def is_segment(name: str) -> bool:
    """A complete segment; .partial, .backup and .history files are not."""
    return bool(SEGMENT.match(name))


# A backup history file: the segment and offset of the backup's start, `.backup`.
BACKUP_HISTORY = re.compile(r"^([0-9A-F]{24})\.[0-9A-F]{8}\.backup$")


def backup_history_segment(name: str) -> str | None:
    """The segment a backup history file names, the backup's start: archived before the
    history file, which pg_backup_stop() writes once that WAL is complete (and then waits for
    the archiving of all the backup's WAL, up to its stop segment)."""
    match = BACKUP_HISTORY.match(name)
    return match.group(1) if match else None


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


def parse_lsn(text: str) -> int:
    """`16/B374D848` -> the 64-bit WAL position."""
    high, sep, low = text.strip().partition("/")
    if not sep:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def parse_history(text: str) -> list[tuple[int, int]]:
    """A timeline history file: `parentTLI<tab>switchpoint<tab>reason` lines, oldest first.
    Returns (timeline, the LSN where it ended). Raises ValueError on anything else."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) < 2:
            raise ValueError(f"unparsable history line {line!r}")
        entries.append((int(fields[0]), parse_lsn(fields[1])))
    return entries


def history_name(tli: int) -> str:
    return f"{tli:08X}.history"


def chain_ranges(
    names: list[str], current: int, history: list[tuple[int, int]], segment_size: int
) -> list[tuple[int, int, int]]:
    """The segment ranges recovery replays to reach the newest archived segment of `current`:
    (timeline, first, last) for each timeline of the chain. A timeline ends where its successor
    begins (the segment holding the switch point is the successor's first; the old timeline's
    copy of it is only partial). The oldest timeline starts at its oldest archived segment;
    the current one ends at its newest."""
    numbers: dict[int, list[int]] = {}
    for n in names:
        if is_segment(n):
            numbers.setdefault(timeline(n), []).append(segment_number(n, segment_size))
    chain = [tli for tli, _ in history] + [current]
    starts: dict[int, int | None] = {}
    ends: dict[int, int | None] = {}
    for i, tli in enumerate(chain):
        have = sorted(numbers.get(tli, []))
        starts[tli] = history[i - 1][1] // segment_size if i > 0 else (have[0] if have else None)
        if i < len(history):
            ends[tli] = history[i][1] // segment_size - 1
        else:
            ends[tli] = have[-1] if have else None
    ranges = []
    for tli in chain:
        first, last = starts[tli], ends[tli]
        if first is not None and last is not None and first <= last:
            ranges.append((tli, first, last))
    return ranges


def missing_in(
    names: list[str], ranges: list[tuple[int, int, int]], segment_size: int
) -> list[tuple[str, str]]:
    """Runs (first, last) of segment names absent from `names` within the ranges (computed from
    the names present, so a range's length costs nothing)."""
    numbers: dict[int, set[int]] = {}
    for n in names:
        if is_segment(n):
            numbers.setdefault(timeline(n), set()).add(segment_number(n, segment_size))
    runs: list[tuple[str, str]] = []
    for tli, first, last in ranges:
        have = sorted(x for x in numbers.get(tli, set()) if first <= x <= last)
        for prev, cur in pairwise([first - 1, *have, last + 1]):
            if cur - prev > 1:
                runs.append(
                    (
                        segment_name(tli, prev + 1, segment_size),
                        segment_name(tli, cur - 1, segment_size),
                    )
                )
    return runs
