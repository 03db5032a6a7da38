"""The run's evidence files: each host's raw outputs under `evidence/<host>/`, the zone probes'
attempts, and what a bank's own plugin adds through the `pytest_walguard_host_evidence` hook
(walguard.hookspecs).

The audit's fact cache hands each host's facts here once, as they are collected (it knows this
writer only as an `EvidenceSink`, walguard.audit.items); which evidence backs which result is
read back from these files by walguard.report.evidence.

A hook's files go under `evidence/<host>/extra/`, so they can never replace walguard's own. Their
names come from code walguard does not control: a name must be one plain file name (letters,
digits, `.`, `_`, `-`; not starting with a dot), or it is refused, as is a name given twice. A
refused file, or a hook that raised, is written down in `evidence/<host>/extra.refused.txt`
(covered by the signed manifest like every file of the run); no verdict depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from walguard.facts.host import HostFacts
from walguard.inventory.model import bad_name

EXTRA_DIR = "extra"
REFUSED = "extra.refused.txt"
# One path component, never `.`/`..` or hidden, no separator, NUL or control character.
EXTRA_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
SUFFIX = {"postgresql": ".json"}  # every other collector output is text

# What pluggy returns for `pytest_walguard_host_evidence`: a list of (name, text) per
# implementation.
ExtraEvidence = Callable[..., list[Any]]


class EvidenceNameError(ValueError):
    """A hook's evidence file name that is not one plain file name."""


def evidence_dir(run_dir: Path, host: str) -> Path:
    """run_dir/evidence/<host>. The inventory readers refuse a host name that is not one plain
    path component; checked again here, where the name becomes a path, so that no name
    however it arrived writes outside the run directory."""
    base = (run_dir / "evidence").resolve()
    directory = base / host
    if bad_name(host) is not None or directory.resolve().parent != base:
        raise ValueError(f"host name {host!r} is not a directory name inside {base}")
    return directory


def write_evidence(run_dir: Path, found: HostFacts) -> Path:
    """The raw outputs the results were read from, one file each, beside the report. Remote
    output is kept as the bytes it was, even where it is not UTF-8."""
    directory = evidence_dir(run_dir, found.host)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in found.evidence.items():
        path = directory / f"{name}{SUFFIX.get(name, '.txt')}"
        raw = found.raw.get(name)
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text, errors="replace")
    return directory


def write_zone_probe(run_dir: Path, probe: str, raw: str) -> None:
    """What a zone's probe host printed, once per probe (every host's matrix reads it)."""
    path = evidence_dir(run_dir, probe) / "zone_probe.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(raw, errors="replace")


def extra_name(name: object) -> str:
    """A hook's file name, if it is one plain file name inside `extra/`; else EvidenceNameError."""
    if not isinstance(name, str) or not EXTRA_NAME.fullmatch(name):
        raise EvidenceNameError(
            f"{name!r} is not a plain file name (letters, digits, '.', '_', '-'; at most 100; "
            "not starting with a dot)"
        )
    return name


def write_extra(directory: Path, answers: Iterable[Any]) -> list[str]:
    """The hook implementations' (name, text) files under `directory/extra/`; returns what was
    refused, one line each (nothing outside `extra/` is ever written from a hook's name)."""
    refused: list[str] = []
    extra = directory / EXTRA_DIR
    written: set[str] = set()
    for answer in answers:
        for entry in answer or ():
            try:
                if not isinstance(entry, tuple | list) or len(entry) != 2:
                    raise TypeError("expected (name, text)")
                name, text = entry
                name = extra_name(name)
                if name in written:
                    raise EvidenceNameError(f"{name!r} was given twice")
                if not isinstance(text, str | bytes):
                    raise EvidenceNameError(f"{name!r}: its text is {type(text).__name__}")
            except (TypeError, ValueError) as exc:
                refused.append(f"refused {_shown(entry)}: {exc}")
                continue
            extra.mkdir(exist_ok=True)
            path = extra / name
            if path.resolve().parent != extra.resolve():  # cannot happen with EXTRA_NAME
                refused.append(f"refused {name!r}: outside {extra}")
                continue
            data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
            with path.open("xb") as f:  # never through a file or link that is already there
                f.write(data)
            written.add(name)
    return refused


def _shown(entry: object) -> str:
    """A refused entry as one line an auditor can read, whatever it held (NUL, newlines)."""
    return repr(entry).replace("\n", "\\n")[:300]


class EvidenceFiles:
    """The evidence writer the fact cache is given: everything it writes goes under
    `run_dir/evidence/`."""

    def __init__(self, run_dir: Path, extra: ExtraEvidence | None = None) -> None:
        self.run_dir = run_dir
        self.extra = extra

    def host(self, found: HostFacts) -> None:
        directory = write_evidence(self.run_dir, found)
        if self.extra is None:
            return
        try:
            answers = self.extra(host=found.host, facts=found)
            refused = write_extra(directory, answers)
        except Exception as exc:  # a bank's hook: its failure is written down, not the run's end
            why = f"{type(exc).__name__}: {_shown(str(exc))}"
            refused = [f"pytest_walguard_host_evidence failed: {why}"]
        if refused:
            (directory / REFUSED).write_text("\n".join(refused) + "\n", errors="replace")

    def zone_probe(self, probe: str, raw: str) -> None:
        write_zone_probe(self.run_dir, probe, raw)
