"""Journal errors compared with a baseline: what is new since the previous run.

A line is normalised before comparing, so that what changes on every occurrence of the same
error (the timestamp and host prefix, process ids, long numbers such as ports and sizes, hex
identifiers) does not make it new. The baseline is the same host's errors in the evidence
(`evidence/HOST/journal_errors.txt`) of the previous run, the one walguard.history.previous found
and
verified for drift too; the file is read back only as that run's verified manifest lists it.
Without a verified previous run there is no baseline: the lines are judged against the policy's
noise list alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from walguard.history.previous import ChangedSinceVerified, Previous, read_as_listed
from walguard.part import Part

EVIDENCE_NAME = "journal_errors.txt"
ALONE = "judged against the noise list alone"

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


@dataclass(frozen=True)
class Baseline:
    """One host's lines from the previous run; `lines` None: nothing to compare with, so the
    noise list alone judges (`note` says so, and why)."""

    lines: tuple[str, ...] | None
    run: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Baselines:
    """Every host's baseline, from the previous run: what the controller found, in a form it
    can hand to xdist workers (`to_wire`), which then read the same files and check them
    against the same digests."""

    run: str | None
    directory: Path | None
    digests: Mapping[str, str]  # host -> SHA-256 of its journal evidence in the manifest
    note: str
    error: str = ""  # the previous run was not looked up: every host's baseline is unknown

    @classmethod
    def of(cls, previous: Previous) -> Baselines:
        run = previous.run
        if run is None:
            return cls(None, None, MappingProxyType({}), previous.note)
        digests = {}
        for rel, digest in run.files.items():
            parts = rel.split("/")
            if len(parts) == 3 and parts[0] == "evidence" and parts[2] == EVIDENCE_NAME:
                digests[parts[1]] = digest
        return cls(run.run_id, run.path, MappingProxyType(digests), "")

    def for_host(self, host: str) -> Part[Baseline]:
        if self.error:
            return Part(error=self.error)
        if self.run is None or self.directory is None:
            why = f"no verified earlier run of this inventory: {ALONE} ({self.note})"
            return Part(Baseline(None, None, why))
        digest = self.digests.get(host)
        if digest is None:
            why = f"run {self.run} has no journal evidence for {host}: {ALONE}"
            return Part(Baseline(None, self.run, why))
        try:
            data = read_as_listed(self.directory / "evidence" / host / EVIDENCE_NAME, digest)
        except ChangedSinceVerified as exc:
            return Part(error=f"the baseline of run {self.run} cannot be trusted: {exc}")
        text = data.decode("utf-8", errors="replace")
        return Part(Baseline(tuple(ln for ln in text.splitlines() if ln.strip()), self.run))

    def to_wire(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "dir": str(self.directory) if self.directory is not None else None,
            "digests": dict(self.digests),
            "note": self.note,
            "error": self.error,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Baselines:
        where = wire.get("dir")
        return cls(
            wire.get("run"),
            Path(where) if where else None,
            MappingProxyType(dict(wire.get("digests") or {})),
            str(wire.get("note", "")),
            str(wire.get("error", "")),
        )


def not_looked_up(why: str) -> Baselines:
    """No answer at all (never a "first run"): WG-SYS-004 is ERROR, not judged on less."""
    return Baselines(None, None, MappingProxyType({}), "", error=why)
