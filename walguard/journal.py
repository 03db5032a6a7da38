"""Journal errors compared with a baseline: what is new since the previous run.

A line is normalised before comparing, so that what changes on every occurrence of the same
error (the timestamp and host prefix, process ids, long numbers such as ports and sizes, hex
identifiers) does not make it new. The baseline is the same host's errors in the previous run's
evidence (`evidence/HOST/journal_errors.txt`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

EVIDENCE_NAME = "journal_errors.txt"

# journalctl -o short-iso: "2026-11-26T01:40:58+0000 HOST IDENT[PID]: MESSAGE"
_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[+-]\d{4}|Z)?\s+\S+\s+")
_SUBS = (
    (re.compile(r"\[\d+\]"), "[N]"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "TIME"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "TIME"),
    (re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b", re.IGNORECASE), "HEX"),
    (re.compile(r"\b\d{4,}\b"), "N"),
)


def normalise(line: str) -> str:
    text = _PREFIX.sub("", line.strip())
    for pattern, replacement in _SUBS:
        text = pattern.sub(replacement, text)
    return text


def new_errors(
    current: Iterable[str], baseline: Iterable[str] | None, noise: Iterable[str]
) -> list[str]:
    """The current lines (as they were) whose normalised form is neither in the baseline nor
    matched by a known-noise pattern. Without a baseline, every line that is not noise."""
    known = {normalise(line) for line in baseline or ()}
    patterns = [re.compile(p) for p in noise]
    found = []
    for line in current:
        norm = normalise(line)
        if norm in known or any(p.search(line) or p.search(norm) for p in patterns):
            continue
        found.append(line)
    return found


def previous_baseline(run_dir: Path, host: str) -> tuple[tuple[str, ...], str] | None:
    """The newest earlier run beside `run_dir` with journal evidence for `host`: its lines and
    run id. Run directories are named by UTC timestamp first, so names sort by time."""
    root = run_dir.parent
    if not root.is_dir():
        return None
    for other in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True):
        if other.name >= run_dir.name:
            continue
        path = other / "evidence" / host / EVIDENCE_NAME
        if path.is_file():
            text = path.read_text(errors="replace")
            return tuple(ln for ln in text.splitlines() if ln.strip()), other.name
    return None
