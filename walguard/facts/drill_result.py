"""What a restore drill showed, read from drill.sh's framed sections:

- drill_prepare: `backup NAME`, `label ...` (its backup_label), `start_wal SEG`,
  `space backup=B wal=W need=N avail=A`, `scratch DIR`, `stale DIR removed`; exit 2, 28 (no
  space) or 75 (another drill runs) with a `cannot drill: ...` line when the drill cannot start;
- drill_canary: `a ID|LSN|TIME`, `target TIME`, `b ID|LSN|TIME`, `switched SEG`, `sysid N`,
  `archived SEG after N s`;
- drill_restore: `limits ...`, `timing start=T copied=T ready=T|none`, then from the restored
  cluster `sysid N`, `lsn L`, `canary_a N`, `canary_b N`;
- drill_log: the scratch server's log; drill_cleanup: `removed DIR`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section

# What PostgreSQL logs when recovery reaches a time target (xlogrecovery.c, recoveryStopsBefore).
_STOPPING = re.compile(r"recovery stopping before (?:commit|abort) of transaction \d+, time [^\n]+")
# A server log line's severity (log_line_prefix varies; the severity word is followed by ':  ').
_FATAL = re.compile(r"\b(FATAL|PANIC):\s+(.*)")
_TURNED_AWAY = (
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
)


@dataclass(frozen=True)
class Canary:
    id: str
    lsn: str
    written: str  # UTC, as the primary's clock_timestamp()


@dataclass(frozen=True)
class DrillResult:
    backup: str
    start_wal: str | None
    label: tuple[str, ...]
    space: dict[str, int]
    stale: tuple[str, ...]
    canary_a: Canary
    canary_b: Canary
    target: str
    primary_sysid: str
    switched: str
    restored: bool  # the scratch cluster answered, promoted, at the target
    restore_s: float | None  # from the start of the copy to the cluster answering (the RTO)
    copy_s: float | None
    restored_sysid: str | None
    restored_lsn: str | None
    a_rows: int | None
    b_rows: int | None
    log: str
    limits: str
    cleaned: bool
    cleanup: str
    problems: tuple[str, ...] = field(default_factory=tuple)
    restored_on: str | None = None  # the restore host (walguard_restore_host); None: the host

    @property
    def stopping_line(self) -> str | None:
        match = _STOPPING.search(self.log)
        return match.group(0).strip() if match else None

    @property
    def fatal_lines(self) -> list[str]:
        """The log's FATAL and PANIC lines, but for a client turned away while the server was
        still starting (not the restore's failure)."""
        return [
            m.group(0).strip()
            for m in _FATAL.finditer(self.log)
            if not m.group(2).startswith(_TURNED_AWAY)
        ]


def _pairs(section: Section) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in section.output.splitlines():
        key, _, value = line.partition(" ")
        if key and key not in found:
            found[key] = value.strip()
    return found


def _last_line(section: Section) -> str:
    lines = [line for line in section.output.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {section.rc}"


def _canary(value: str | None, which: str) -> Canary:
    parts = (value or "").split("|")
    if len(parts) != 3 or not all(parts):
        raise FactUnavailable(f"restore drill: canary {which} unreadable: {value!r}")
    return Canary(*parts)


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _timing(text: str, key: str) -> float | None:
    match = re.search(rf"\b{key}=([\d.]+)", text)
    return float(match.group(1)) if match else None


def parse_drill(sections: dict[str, Section]) -> DrillResult:
    """The drill's result; FactUnavailable (ERROR, "cannot drill: ...") when it could not be
    carried out to a restore attempt."""
    prepare = sections.get("drill_prepare")
    if prepare is None:
        raise FactUnavailable("cannot drill: the drill printed nothing (it did not start)")
    if prepare.rc != 0:
        raise FactUnavailable(_last_line(prepare))
    canary = sections.get("drill_canary")
    if canary is None:
        raise FactUnavailable("cannot drill: the drill ended before its canaries were written")
    if canary.rc != 0:
        raise FactUnavailable(_last_line(canary))
    restore = sections.get("drill_restore")
    if restore is None:
        raise FactUnavailable("cannot drill: the drill ended before the restore")
    p, c, r = _pairs(prepare), _pairs(canary), _pairs(restore)
    if r.get("limits") is None and restore.rc != 0:
        raise FactUnavailable(_last_line(restore))
    space = {
        k: int(v)
        for k, v in re.findall(r"(\w+)=(\d+)", p.get("space", ""))
        if k in ("backup", "wal", "need", "avail")
    }
    timing = r.get("timing", "")
    start, copied, ready = (_timing(timing, k) for k in ("start", "copied", "ready"))
    log_section = sections.get("drill_log")
    cleanup = sections.get("drill_cleanup")
    return DrillResult(
        backup=p.get("backup", ""),
        start_wal=p.get("start_wal") or None,
        label=tuple(
            line[len("label ") :]
            for line in prepare.output.splitlines()
            if line.startswith("label ")
        ),
        space=space,
        stale=tuple(
            line.split(" ")[1] for line in prepare.output.splitlines() if line.startswith("stale ")
        ),
        canary_a=_canary(c.get("a"), "A"),
        canary_b=_canary(c.get("b"), "B"),
        target=c.get("target", ""),
        primary_sysid=c.get("sysid", ""),
        switched=c.get("switched", ""),
        restored=restore.rc == 0 and ready is not None,
        restore_s=(ready - start) if ready is not None and start is not None else None,
        copy_s=(copied - start) if copied is not None and start is not None else None,
        restored_sysid=r.get("sysid"),
        restored_lsn=r.get("lsn"),
        a_rows=_number(r.get("canary_a")),
        b_rows=_number(r.get("canary_b")),
        log=log_section.output if log_section is not None else "",
        limits=r.get("limits", ""),
        cleaned=cleanup is not None and cleanup.rc == 0,
        cleanup=_last_line(cleanup)
        if cleanup is not None
        else "the drill ended before its cleanup",
        problems=tuple(
            line
            for line in restore.output.splitlines()
            if line.startswith(("deadline", "answered:"))
        ),
    )
