"""Base backups taken by pgBackRest (WG-RST-001): what `pgbackrest --stanza=S --output=json info`
prints, run by the collector as the cluster's owner (the `pgbackrest_info` section, with what
pgBackRest wrote to stderr: its WARN lines, or its ERROR when the command itself failed).

pgBackRest's JSON (src/command/info/info.c) is a list of stanzas, each with:

- `status`: `code` and `message`: 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing
  stanza data, 4 different across repos, 5 database mismatch across repos, 99 other (then each
  repository's `repo[].status.message` says what went wrong); `lock.backup.held` while a backup
  runs;
- `backup[]`, oldest to newest by stop time: `label`, `type` (full, diff, incr), `timestamp`
  `start`/`stop` (Unix seconds), `archive` `start`/`stop` (the WAL segments the backup needs to
  be consistent), `database` `id`/`repo-key`, and `error` (true: pgBackRest found errors while
  taking it, such as page checksum errors; absent from backups taken before pgBackRest 2.36);
- `archive[]`: per database id and repository, `min` and `max`, the oldest and newest WAL
  segment in the repository (a range: gaps inside it are `pgbackrest verify`'s to find).

It can exit 0 while the stanza's status reports a problem: the status decides, not the exit.
Anything here that is not that shape is FactUnavailable ("cannot verify"), never a pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from walguard.errors import FactUnavailable
from walguard.facts.backups import host_time
from walguard.facts.sections import Section

SECTION = "pgbackrest_info"
_SEGMENT = re.compile(r"[0-9A-F]{24}")
# timeout(1)'s status when the command hung; runuser's (and the shell's) when it could not
# execute or find the program.
_TIMED_OUT = 124
_NOT_RUN = (126, 127)


@dataclass(frozen=True)
class PgBackRestBackup:
    label: str
    type: str  # full, diff or incr
    start: datetime  # UTC
    stop: datetime  # UTC
    archive_start: str | None  # the first WAL segment the backup needs
    archive_stop: str | None  # the last
    db_id: int | None
    repo_key: int | None
    error: bool | None  # None: pgBackRest recorded no error flag (taken before 2.36)
    size: int | None = None  # the database's size restored (info.size), bytes

    @property
    def times(self) -> str:
        return f"{_text(self.start)} to {_text(self.stop)}"


@dataclass(frozen=True)
class ArchiveRange:
    db_id: int | None
    repo_key: int | None
    archive_id: str  # e.g. 15-1: the PostgreSQL version and pgBackRest's database id
    min: str | None  # the oldest WAL segment in the repository for that database
    max: str | None  # the newest


@dataclass(frozen=True)
class PgBackRestInfo:
    stanza: str
    status_code: int
    status_message: str
    repo_status: tuple[str, ...]  # "repo1: [FileOpenError] ..." for each repository not ok
    backups: tuple[PgBackRestBackup, ...]
    archives: tuple[ArchiveRange, ...]
    read_at: datetime | None = None  # the host's clock when it was read (the `date` section)
    backup_running: bool = False  # pgBackRest's backup lock is held
    said: tuple[str, ...] = ()  # what pgBackRest printed besides the JSON (WARN: ...)
    # The stanza's databases: (db id, repo key) -> the PostgreSQL system identifier backed up.
    systems: tuple[tuple[int | None, int | None, int], ...] = ()

    def system_of(self, backup: PgBackRestBackup) -> int | None:
        """The system identifier of the database the backup is of (None: not listed)."""
        for db_id, repo_key, system in self.systems:
            same_repo = None in (repo_key, backup.repo_key) or repo_key == backup.repo_key
            if db_id == backup.db_id and same_repo:
                return system
        return None

    def newest(self) -> PgBackRestBackup | None:
        """The newest backup by its stop time (pgBackRest's own order)."""
        return max(self.backups, key=lambda b: b.stop, default=None)

    def archive_of(self, backup: PgBackRestBackup) -> ArchiveRange | None:
        """The repository's WAL range of the backup's database (in its repository)."""
        for found in self.archives:
            same_repo = None in (found.repo_key, backup.repo_key) or (
                found.repo_key == backup.repo_key
            )
            if found.db_id == backup.db_id and same_repo:
                return found
        return None


def parse_pgbackrest_info(sections: dict[str, Section], stanza: str) -> PgBackRestInfo:
    """The stanza's backups and archive as pgBackRest reports them; FactUnavailable when its
    report was not had or cannot be read."""
    section = sections.get(SECTION)
    if section is None:
        raise FactUnavailable(f"cannot verify: pgBackRest was not asked (no {SECTION} section)")
    text = section.output.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1][:300] if lines else "no output"
    if section.rc == _TIMED_OUT:
        raise FactUnavailable(
            f"cannot verify: pgbackrest --stanza={stanza} info did not answer within the "
            "per-command timeout"
        )
    if section.rc in _NOT_RUN:
        raise FactUnavailable(
            f"cannot verify: pgbackrest could not be run (exit {section.rc}): {last}"
        )
    if section.rc != 0:
        errors = [line for line in lines if "ERROR:" in line] or [last]
        raise FactUnavailable(
            f"cannot verify: pgbackrest --stanza={stanza} info failed (exit {section.rc}): "
            f"{'; '.join(e[:300] for e in errors[:2])}"
        )
    doc, said = _json(lines)
    if doc is None:
        raise FactUnavailable(f"cannot verify: pgbackrest info printed no JSON: {last}")
    try:
        return _stanza(doc, stanza, said, host_time(sections.get("date")))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise FactUnavailable(
            f"cannot verify: pgbackrest info's JSON is not what walguard reads "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def _json(lines: list[str]) -> tuple[Any, tuple[str, ...]]:
    """The JSON document (pgBackRest prints it as one line on stdout) and the other lines."""
    for i, line in enumerate(lines):
        if not line.startswith("["):
            continue
        try:
            return json.loads(line), tuple(lines[:i] + lines[i + 1 :])
        except ValueError:
            continue
    try:
        return json.loads("\n".join(lines)), ()
    except ValueError:
        return None, tuple(lines)


def _stanza(doc: Any, stanza: str, said: tuple[str, ...], now: datetime | None) -> PgBackRestInfo:
    if not isinstance(doc, list):
        raise TypeError(f"a list of stanzas expected, got {type(doc).__name__}")
    found = [s for s in doc if isinstance(s, dict) and s.get("name") == stanza]
    if len(found) != 1:
        names = [s.get("name") for s in doc if isinstance(s, dict)]
        raise ValueError(f"stanza {stanza} is not in it (it lists {names})")
    entry = found[0]
    status = _dict(entry, "status")
    code, message = status["code"], status["message"]
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        raise TypeError(f"status {status!r}")
    repos = []
    for repo in entry.get("repo") or ():
        repo_status = _dict(repo, "status")
        said_there = str(repo_status.get("message"))
        if repo_status.get("code") != 0 and said_there != message:
            repos.append(f"repo{repo.get('key', '?')}: {_flat(said_there)}")
    lock = status.get("lock")
    held = (
        isinstance(lock, dict)
        and isinstance(lock.get("backup"), dict)
        and (lock["backup"].get("held") is True)
    )
    return PgBackRestInfo(
        stanza=stanza,
        status_code=code,
        status_message=message,
        repo_status=tuple(repos),
        backups=tuple(_backup(b) for b in _list(entry, "backup")),
        archives=tuple(_archive(a) for a in _list(entry, "archive")),
        read_at=now,
        backup_running=held,
        said=said,
        systems=tuple(_system(d) for d in _list(entry, "db")),
    )


def _system(raw: Any) -> tuple[int | None, int | None, int]:
    if not isinstance(raw, dict):
        raise TypeError(f"a database {raw!r}")
    system = raw.get("system-id")
    if not isinstance(system, int) or isinstance(system, bool):
        raise TypeError(f"system-id {system!r}")
    return _int(raw.get("id")), _int(raw.get("repo-key")), system


def _backup(raw: Any) -> PgBackRestBackup:
    if not isinstance(raw, dict):
        raise TypeError(f"a backup {raw!r}")
    label, kind = raw["label"], raw["type"]
    if not isinstance(label, str) or not isinstance(kind, str):
        raise TypeError(f"label {label!r}, type {kind!r}")
    stamps, archive, database = _dict(raw, "timestamp"), _dict(raw, "archive"), raw.get("database")
    error = raw.get("error")
    if error is not None and not isinstance(error, bool):
        raise TypeError(f"{label}: error {error!r}")
    db = database if isinstance(database, dict) else {}
    info = raw.get("info")
    size = info.get("size") if isinstance(info, dict) else None
    return PgBackRestBackup(
        label=label,
        type=kind,
        start=_time(stamps["start"]),
        stop=_time(stamps["stop"]),
        archive_start=_segment(archive.get("start")),
        archive_stop=_segment(archive.get("stop")),
        db_id=_int(db.get("id")),
        repo_key=_int(db.get("repo-key")),
        error=error,
        size=_int(size),
    )


def _archive(raw: Any) -> ArchiveRange:
    if not isinstance(raw, dict):
        raise TypeError(f"an archive {raw!r}")
    database = raw.get("database")
    db = database if isinstance(database, dict) else {}
    return ArchiveRange(
        db_id=_int(db.get("id")),
        repo_key=_int(db.get("repo-key")),
        archive_id=str(raw.get("id")),
        min=_segment(raw.get("min")),
        max=_segment(raw.get("max")),
    )


def _dict(raw: Any, key: str) -> dict[str, Any]:
    value = raw[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key} {value!r}")
    return value


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise TypeError(f"{key} {value!r}")
    return value


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"an id {value!r}")
    return value


def _time(value: Any) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise TypeError(f"a timestamp {value!r}")
    return datetime.fromtimestamp(value, UTC)


def _segment(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise ValueError(f"a WAL segment name {value!r}")
    return value


def _flat(message: str) -> str:
    """A repository's error (`[FileOpenError] unable to load ...:` and a line for each file
    tried, then HINT lines) as one line, without the hints."""
    lines = [line.strip().rstrip(":") for line in message.splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("HINT:"))[:600]


def _text(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
