"""Restorability: is there a base backup that point-in-time recovery can start from, recent,
complete by its own verification, with every archived segment from its start on? And how much
would be lost if the primary were lost now?"""

from __future__ import annotations

from datetime import timedelta

from walguard.archive.command import reading_of
from walguard.archive.scope import REPOSITORY_KINDS
from walguard.archive.walnames import (
    chain_ranges,
    history_name,
    missing_in,
    parse_history,
    segment_number,
    timeline,
)
from walguard.controls import NotApplicable, control, fail
from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir
from walguard.facts.backups import BaseBackup, BaseBackups
from walguard.facts.host import HostFacts
from walguard.facts.pgbackrest_backups import PgBackRestInfo
from walguard.facts.postgres_state import Postgres
from walguard.facts.wal_window import WalWindow
from walguard.policy.model import Policy

REFS = ("DORA Art. 12(2)", "BSI CON.3.A5", "ISO/IEC 27001 A.8.13")
VERIFIED = "backup successfully verified"


@control(
    "WG-RST-001",
    "a usable base backup exists: recent, verified against its manifest, WAL archived from its "
    "start on",
    severity="critical",
    refs=REFS,
    reads=("base_backups", "base_backup_verify", "pgbackrest_info", "archive_files", "date"),
    scenarios=(
        "base-backup-missing",
        "base-backup-old",
        "base-backup-file-changed",
        "archive-gap",
        "archive-dir-missing",
        "archive-dir-not-a-mount",
        "archive-dir-owner-root",
    ),
    rationale="Archived WAL alone restores nothing: recovery starts from a base backup and "
    "replays the archive from that backup's start. Without a recent, complete backup and every "
    "segment after it, the database cannot be recovered to a point in time.",
    detail="the newest base backup in `walguard_base_backup_dir` is younger than "
    "`walguard_base_backup_max_age_hours`, `pg_verifybackup` (the server's own) verifies it "
    "against its manifest with the WAL it needs read from the archive, and the archive holds "
    "every segment from its START WAL LOCATION to the newest archived one. With "
    "`walguard_base_backup_source: pgbackrest`, `pgbackrest info` says the stanza is ok, its "
    "newest backup is of this server's system identifier, finished within that age with no "
    "error flag, and the WAL it needs is inside the repository's archive range (Barman, "
    "WAL-G: ERROR, not read yet)",
)
def test_base_backup_usable(
    backups: BaseBackups | PgBackRestInfo, facts: HostFacts, policy: Policy
) -> str:
    if isinstance(backups, PgBackRestInfo):
        # Whose backups: a stanza named for the wrong cluster (a shared repository host) would
        # show another database's healthy backups.
        return _pgbackrest_usable(backups, policy, facts.pg.get().system_identifier)
    # Read here, not as parameters: pgBackRest's account of its backups needs neither.
    archive, pg = facts.archive.get(), facts.pg.get()
    if not backups.exists:
        fail(f"no base backup: {backups.directory} does not exist")
    if not backups.backups:
        fail(
            f"no base backup in {backups.directory}: point-in-time recovery has nothing to "
            "start from"
        )
    newest = backups.newest()
    if newest is None:
        why = "; ".join(f"{b.name}: {b.problem}" for b in backups.backups if b.problem)
        if any("zone" in (b.problem or "") for b in backups.backups):
            raise FactUnavailable(f"cannot verify: {why}")
        fail(f"no usable base backup in {backups.directory}: {why}")
    age = _age(backups, newest)
    limit = timedelta(hours=policy.base_backup_max_age_hours)
    if age > limit:
        fail(
            f"the newest base backup, {newest.name} (started {newest.start_time_text}), is "
            f"{_hours(age)} old; the policy allows {policy.base_backup_max_age_hours} h"
        )
    _verified(backups, newest)
    wal = _wal_from_start(newest, archive, pg, policy)
    how = "checksums" if policy.base_backup_verify == "checksums" else "sizes only"
    return (
        f"{newest.name} (started {newest.start_time_text}, {_hours(age)} ago, start WAL "
        f"{newest.start_wal}): verified by pg_verifybackup ({how}); {wal}"
    )


def _pgbackrest_usable(info: PgBackRestInfo, policy: Policy, server_system: int) -> str:
    """pgBackRest's own account, judged by what it prints: it exits 0 whatever its status."""
    where = f"pgBackRest's stanza {info.stanza}"
    if info.status_code != 0:
        repos = f" ({'; '.join(info.repo_status)})" if info.repo_status else ""
        fail(f"{where} reports status {info.status_code}, {info.status_message}{repos}")
    newest = info.newest()
    if newest is None:
        fail(f"{where} has no backup: point-in-time recovery has nothing to start from")
    named = f"{newest.label} ({newest.type}, {newest.times})"
    system = info.system_of(newest)
    if not server_system or system is None:
        raise FactUnavailable(
            f"cannot verify whose backup {named} is: the server's system identifier "
            f"({server_system or 'not read'}) or the stanza's ({system or 'not listed'})"
        )
    if system != server_system:
        fail(
            f"{where}'s newest backup {named} is of database system {system}, but this server "
            f"is {server_system}: the stanza holds another cluster's backups"
        )
    if info.read_at is None:
        raise FactUnavailable("cannot tell the backup's age: the host's clock was not read")
    age = info.read_at - newest.stop
    if age > timedelta(hours=policy.base_backup_max_age_hours):
        fail(
            f"the newest pgBackRest backup, {named}, finished {_hours(age)} ago; the policy "
            f"allows {policy.base_backup_max_age_hours} h"
        )
    if newest.error:
        fail(
            f"pgBackRest marks its newest backup {named} with errors found while taking it "
            f"(such as page checksum errors: `pgbackrest --stanza={info.stanza} --set="
            f"{newest.label} info` lists the files)"
        )
    if newest.error is None:
        raise FactUnavailable(
            f"cannot verify: pgBackRest recorded no error flag for {named} (backups taken "
            "before pgBackRest 2.36 have none)"
        )
    start, stop = newest.archive_start, newest.archive_stop
    if start is None or stop is None:
        raise FactUnavailable(f"cannot verify: pgBackRest names no WAL range for {named}")
    archive = info.archive_of(newest)
    low, high = (archive.min, archive.max) if archive else (None, None)
    if archive is None or low is None or high is None:
        fail(
            f"pgBackRest's repository holds no WAL for the database of {named} (db id "
            f"{newest.db_id}): the backup cannot be made consistent"
        )
    # Segment names compare as their numbers: timeline, log and segment in fixed-width hex.
    if not low <= start <= stop <= high:
        fail(
            f"{named} needs WAL {start} to {stop}, but pgBackRest's archive range is {low} to "
            f"{high} ({archive.archive_id}): the backup cannot be made consistent"
        )
    running = "; a backup is running" if info.backup_running else ""
    return (
        f"{named}, finished {_hours(age)} ago, no error flag; it needs WAL {start} to {stop}, "
        f"inside pgBackRest's archive range {low} to {high} ({archive.archive_id}); stanza "
        f"status ok{running} (a gap inside the range is pgbackrest verify's to find: "
        "WG-ACT-005)"
    )


def _age(backups: BaseBackups, newest: BaseBackup) -> timedelta:
    if backups.read_at is None:
        raise FactUnavailable("cannot tell the backup's age: the host's clock was not read")
    if newest.start_time is None:  # not met: newest() only returns dated backups
        raise FactUnavailable(f"{newest.name} has no START TIME")
    return backups.read_at - newest.start_time


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{max(age.total_seconds(), 0) / 60:.0f} min"


def _verified(backups: BaseBackups, newest: BaseBackup) -> None:
    if newest.format != "plain":
        raise FactUnavailable(
            f"cannot verify: {newest.name} is a {newest.format}-format backup; PostgreSQL's "
            "pg_verifybackup reads tar-format backups only from version 18"
        )
    if not newest.has_manifest:
        fail(f"{newest.name} has no backup_manifest: nothing shows the backup is complete")
    check = backups.verification
    if check is None:
        raise FactUnavailable("pg_verifybackup was not run (no base_backup_verify section)")
    if check.backup != newest.name:
        raise FactUnavailable(
            f"pg_verifybackup checked {check.backup or 'nothing'}, not the newest backup "
            f"{newest.name}: {check.output.splitlines()[-1] if check.output else 'no output'}"
        )
    lines = [line.strip() for line in check.output.splitlines() if line.strip()]
    if check.rc in (126, 127):
        raise FactUnavailable(f"cannot verify: {lines[-1] if lines else 'pg_verifybackup not run'}")
    if check.rc != 0:
        errors = [line for line in lines if "error:" in line] or lines
        fail(f"pg_verifybackup finds {newest.name} damaged: {'; '.join(errors[:3])}")
    if VERIFIED not in lines:
        raise FactUnavailable(
            f"pg_verifybackup of {newest.name} exited 0 without saying '{VERIFIED}'"
        )


def _wal_from_start(newest: BaseBackup, archive: ArchiveDir, pg: Postgres, policy: Policy) -> str:
    if reading_of(pg, policy).kind in REPOSITORY_KINDS:
        return "WAL after it is in the archiving tool's repository (its check: WG-ACT-005)"
    if newest.start_wal is None:  # not met: newest() only returns backups with labels
        raise FactUnavailable(f"{newest.name} has no START WAL LOCATION")
    size = pg.segment_size
    start_tli, first = timeline(newest.start_wal), segment_number(newest.start_wal, size)
    names = [f.name for f in archive.files]
    history = _history(pg, archive) if pg.timeline > 1 else []
    if start_tli not in [tli for tli, _ in history] + [pg.timeline]:
        fail(
            f"{newest.name} was taken on timeline {start_tli}, which is not in the server's "
            f"timeline history (it is on {pg.timeline}): recovery cannot start from it"
        )
    ranges = []
    for tli, low, high in chain_ranges(names, pg.timeline, history, size):
        if tli == start_tli:
            ranges.append((tli, first, high))
        elif ranges:  # the timelines after the backup's, up to the server's
            ranges.append((tli, low, high))
    if not ranges or (len(ranges) == 1 and ranges[0][2] < first):
        fail(
            f"the archive holds no segment from {newest.name}'s start WAL {newest.start_wal} on "
            f"(timeline {start_tli}): the backup cannot be made consistent"
        )
    missing = missing_in(names, ranges, size)
    if missing:
        runs = ", ".join(a if a == b else f"{a}..{b}" for a, b in missing)
        fail(f"segments missing from the archive after {newest.name}'s start: {runs}")
    count = sum(high - low + 1 for _, low, high in ranges)
    return f"the archive holds every segment from {newest.start_wal} on ({count})"


def _history(pg: Postgres, archive: ArchiveDir) -> list[tuple[int, int]]:
    """The server's timeline history from the archived history file (WG-ACT-005 judges whether
    it is there at all)."""
    name = history_name(pg.timeline)
    text = archive.histories.get(name)
    if text is None:
        raise FactUnavailable(f"cannot follow the timelines: {name} is not in {archive.where}")
    try:
        return parse_history(text)
    except ValueError as exc:
        raise FactUnavailable(f"{name}: {exc}") from None


@control(
    "WG-RST-002",
    "the data-loss window now is within the RPO: no commit has waited longer than "
    "walguard_rpo_minutes to be archived",
    severity="high",
    refs=("DORA Art. 12(6)", "BSI CON.3.A5", "ISO/IEC 27001 A.8.13"),
    reads=("wal_window",),
    scenarios=(),  # its RPO is minutes: tests/lab/test_restorability_lab.py waits one out
    rationale="Losing the primary loses every commit the archive does not hold yet. How long "
    "the oldest of them has waited is the data that would be lost now, whatever the archiver's "
    "statistics say; an idle database with nothing to archive loses nothing.",
    detail="the server's own `pg_waldump` reads the commit records in the WAL after the last "
    "archived segment (the older of pg_stat_archiver's last_archived_wal and the archive's "
    "newest whole segment) up to the server's current WAL file: the oldest of them is younger "
    "than `walguard_rpo_minutes` on the server's clock; the newest commit in the archive is "
    "named too. A standby commits nothing of its own: not applicable",
)
def test_data_loss_window(window: WalWindow, policy: Policy) -> str:
    if window.standby:
        raise NotApplicable("a standby: commits are made on its primary, whose window is judged")
    if window.now is None or window.current is None:  # not met: the parser requires both
        raise FactUnavailable("the server's clock or current WAL file was not read")
    if window.boundary is None:
        fail(
            "nothing has been archived (pg_stat_archiver shows no last archived segment and the "
            "archive holds none): the archive can give back no commit"
        )
    back = _archive_gives_back(window)
    age = window.waited()  # FactUnavailable (ERROR) when a segment after it cannot be read
    first = window.first_unarchived
    limit = timedelta(minutes=policy.rpo_minutes)
    if first is None:
        waiting = (
            f"the {window.unarchived_count} segment(s) after it up to the current "
            f"{window.current} hold no commit"
            if window.unarchived_count
            else f"nothing has been written since (the server is at {window.current})"
        )
        return (
            f"no commit waits to be archived: the last archived segment is {window.boundary} "
            f"and {waiting}; {back}"
        )
    newest = window.newest_commit
    then = f"; the newest at {newest.at_text} (xid {newest.xid})" if newest else ""
    found = (
        f"the oldest commit not yet archived (xid {first.xid} at {first.at_text}, in "
        f"{first.segment}, after the last archived segment {window.boundary}) has waited "
        f"{_minutes(age)}{then}"
    )
    if age > limit:
        fail(
            f"{found}: losing the primary now loses every commit since, beyond the RPO of "
            f"{policy.rpo_minutes:g} min; {back}"
        )
    return f"{found}, within the RPO of {policy.rpo_minutes:g} min; {back}"


def _archive_gives_back(window: WalWindow) -> str:
    commit = window.archived_commit
    if commit is not None:
        return (
            f"the archive gives back commits up to {commit.at_text} (xid {commit.xid}, in "
            f"{commit.segment})"
        )
    looked = ", ".join(s.segment for s in window.archived) or "none readable"
    return f"no commit in the newest archived segments ({looked})"


def _minutes(age: timedelta) -> str:
    seconds = age.total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
