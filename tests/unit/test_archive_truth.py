"""What the archive controls conclude from facts: timeline chains and history files, segment
headers (partial, foreign, renamed), the filesystem under the archive (bind mounts from / or
PGDATA, tmpfs, read-only), symlinked directories, standbys and tool repositories."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from tests.archive_facts import ROOT, SEG, VOL, archive, header_hex, names, pg
from walguard.archive.walnames import chain_ranges, missing_in, parse_history, segment_name
from walguard.controls import FUNCTIONS, load_all
from walguard.facts.archive_dir import (
    ArchivedBefore,
    ArchiveDir,
    ArchiveFile,
    Mount,
    parse_headers,
)
from walguard.facts.archive_ownership import FileMode, Ownership, RestoreUser
from walguard.facts.host import HostFacts
from walguard.facts.postgres_state import Archiver, Postgres, Setting
from walguard.facts.sections import Section
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.part import Part
from walguard.policy.model import Policy

load_all()


TARGET = Target("db1", "x", 22, None, None, False, (), MappingProxyType({}))


def verdict(control: str, a: ArchiveDir, p: Postgres, policy: Policy | None = None) -> Any:
    facts = HostFacts("db1", "x", True, None, Part(a), Part(p), Part("active"), 2)
    target = (
        TARGET
        if policy is None
        else Target("db1", "x", 22, None, None, False, (), MappingProxyType({}), policy=policy)
    )
    return judge(FUNCTIONS[control], facts, target)


def test_history_file_parsing() -> None:
    text = "1\t0/3000000\tno recovery target specified\n\n2\t0/5000028\tbefore 2026-11-25\n"
    assert parse_history(text) == [(1, 0x3000000), (2, 0x5000028)]
    with pytest.raises(ValueError):
        parse_history("garbage")


def test_chain_ranges_end_each_timeline_at_its_switch() -> None:
    archived = names(1, range(1, 8)) + names(2, range(8, 11))
    history = [(1, 8 * SEG)]
    assert chain_ranges(archived, 2, history, SEG) == [(1, 1, 7), (2, 8, 10)]
    assert missing_in(archived, [(1, 1, 7), (2, 8, 10)], SEG) == []
    holed = [n for n in archived if n != segment_name(1, 4, SEG)]
    assert missing_in(holed, chain_ranges(holed, 2, history, SEG), SEG) == [
        (segment_name(1, 4, SEG), segment_name(1, 4, SEG))
    ]


def test_a_gap_in_the_old_timeline_after_a_promotion_fails() -> None:
    archived = names(1, [1, 2, 3, 5, 6, 7]) + names(2, [8, 9]) + ["00000002.history"]
    a = archive(archived, histories=MappingProxyType({"00000002.history": "1\t0/8000000\tx\n"}))
    p = pg(timeline=2, current_walfile=names(2, [10])[0])
    v = verdict("WG-ACT-005", a, p)
    assert v.result == "FAIL" and segment_name(1, 4, SEG) in v.message
    a_ok = archive(
        names(1, range(1, 8)) + names(2, [8, 9]) + ["00000002.history"],
        histories=MappingProxyType({"00000002.history": "1\t0/8000000\tx\n"}),
    )
    ok = verdict("WG-ACT-005", a_ok, p)
    assert ok.result == "PASS" and "timeline 1" in ok.message and "timeline 2" in ok.message


def test_a_missing_history_file_fails() -> None:
    a = archive(names(1, range(1, 8)) + names(2, [8, 9]))
    v = verdict("WG-ACT-005", a, pg(timeline=2, current_walfile=names(2, [10])[0]))
    assert v.result == "FAIL" and "00000002.history is not in /pg_archive" in v.message


def test_an_empty_archive_is_not_a_pass() -> None:
    v = verdict("WG-ACT-005", archive([]), pg())
    assert v.result == "FAIL" and "nothing shows the archive is complete" in v.message


def test_headers_partial_foreign_and_renamed_segments() -> None:
    good, foreign, renamed = names(1, [3, 4, 5])
    section = Section(
        "segment_headers",
        f"{good}|{header_hex(good)}\n{foreign}|{header_hex(foreign, sysid=42)}\n"
        f"{renamed}|{header_hex(good)}\n",
        0,
    )
    a = archive(names(1, [1, 2, 3, 4, 5]), headers=parse_headers(section))
    v = verdict("WG-ACT-007", a, pg())
    assert v.result == "FAIL"
    assert f"{foreign} comes from another cluster (system identifier 42" in v.message
    assert f"{renamed} holds other WAL" in v.message
    assert good not in v.message.replace(f"{renamed}", "")


def test_partial_and_symlinked_segments_fail_and_are_named() -> None:
    files = [ArchiveFile(n, "f", SEG, 0.0) for n in names(1, [1, 2, 3])]
    files.append(ArchiveFile(names(1, [4])[0], "f", 8192, 0.0))
    files.append(ArchiveFile(names(1, [5])[0], "l", 20, 0.0))
    a = archive([], files=tuple(files))
    v = verdict("WG-ACT-007", a, pg())
    assert v.result == "FAIL"
    assert f"{names(1, [4])[0]} is 8192 bytes (partial)" in v.message
    assert f"{names(1, [5])[0]} is a symlink" in v.message
    last = verdict(
        "WG-ACT-004", a, pg(archiver=Archiver(5, names(1, [5])[0], 1.0, 0, None, None, "t", None))
    )
    assert last.result == "FAIL" and "is a symlink, not a regular file" in last.message


@pytest.mark.parametrize(
    ("mount", "why"),
    [
        (Mount("/pg_archive", "/dev/sda1", "xfs", ("rw",), "8:1", "/var/pg_archive"), "root"),
        (Mount("/pg_archive", "tmpfs", "tmpfs", ("rw",), "0:55"), "lost at the next reboot"),
        (Mount("/pg_archive", "/dev/sdc1", "xfs", ("ro",), "8:33"), "read-only"),
        (Mount("/pg_archive", "/dev/sdb1", "xfs", ("rw",), "8:17", "/archive"), "data directory"),
    ],
)
def test_a_mount_point_is_not_enough(mount: Mount, why: str) -> None:
    data = Mount("/var/lib/postgresql", "/dev/sdb1", "xfs", ("rw",), "8:17")
    a = archive([], mount=mount, mounts=(ROOT, data, mount), fstype=mount.fstype)
    v = verdict("WG-DIR-002", a, pg())
    assert v.result == "FAIL" and why in v.message, v.message


def test_a_dedicated_volume_passes_and_says_which() -> None:
    v = verdict("WG-DIR-002", archive([]), pg())
    assert v.result == "PASS" and "/dev/mapper/vg-arch" in v.message


def test_a_symlinked_directory_is_judged_where_it_leads() -> None:
    a = archive(
        names(1, [1, 2]),
        path="/pg_archive",
        real_path="/srv/vol",
        is_symlink=True,
        mount_target="/srv/vol",
        mount=Mount("/srv/vol", VOL.source, "xfs", ("rw",), "253:3"),
    )
    v = verdict("WG-DIR-001", a, pg())
    assert v.result == "PASS" and "a symlink to /srv/vol" in v.message
    assert verdict("WG-DIR-002", a, pg()).result == "PASS"


def test_a_standby_is_not_judged_as_a_primary() -> None:
    standby = pg(in_recovery=True, current_walfile=None)
    for control in ("WG-ACT-001", "WG-ACT-004", "WG-ACT-005", "WG-ACT-007"):
        v = verdict(control, archive([]), standby)
        assert v.result == "NOT APPLICABLE" and "standby" in v.message
    strict = Policy(standby_archiving=True)
    v = verdict("WG-ACT-001", archive([]), standby, strict)
    assert v.result == "FAIL" and "archive_mode = always" in v.message
    assert verdict("WG-ARC-001", archive([]), standby, strict).result == "FAIL"


def test_tool_archiving_needs_the_tools_check() -> None:
    settings = dict(pg().settings)
    settings["archive_command"] = Setting(
        "archive_command", "pgbackrest --stanza=main archive-push %p", False, "x"
    )
    p = pg(settings=MappingProxyType(settings))
    unnamed = verdict("WG-ACT-004", archive([]), p)
    assert unnamed.result == "ERROR" and "pgbackrest --stanza=main check" in unnamed.message
    named = Policy(archive_check_command="pgbackrest --stanza=main check")
    ok = verdict("WG-ACT-004", archive([], check=(0, "completed successfully")), p, named)
    assert ok.result == "PASS" and "pgbackrest --stanza=main check passed" in ok.message
    bad = verdict("WG-ACT-005", archive([], check=(82, "ERROR: [082]: WAL segment ...")), p, named)
    assert bad.result == "FAIL" and "exit 82" in bad.message


# Archiving that goes on while the host is read: the collector reads pg_stat_archiver before it
# lists the directory, and the server's statistics are read again a moment later (by psql, right
# after the collector).
# Three segments archived in between (the SELinux guest, right after the seed's fix) made
# WG-ACT-004/005/007 FAIL although every file was there.
RACE_CONTROLS = ("WG-ACT-004", "WG-ACT-005", "WG-ACT-007")


def test_segments_archived_after_the_listing_are_not_missing() -> None:
    listed = archive(names(1, range(1, 3)), archived_before=ArchivedBefore(2, names(1, [2])[0]))
    later = pg()  # five archived by the time the server was asked, the newest 05
    for control in RACE_CONTROLS:
        v = verdict(control, listed, later)
        assert v.result == "PASS", (control, v.message)


def test_without_the_reading_before_the_listing_the_race_fails() -> None:
    """What the collector before this change gave: the same moment, judged FAIL."""
    listed = archive(names(1, range(1, 3)))
    assert verdict("WG-ACT-004", listed, pg()).result == "FAIL"


def test_archiving_that_resumes_while_the_host_is_read_is_an_honest_error() -> None:
    empty = archive([], archived_before=ArchivedBefore(0, None))
    for control in RACE_CONTROLS:
        v = verdict(control, empty, pg())
        assert v.result == "ERROR", (control, v.message)
        assert "archiving went on while the audit read the host (5 archived after" in v.message


def test_a_segment_missing_before_the_listing_still_fails() -> None:
    listed = archive(names(1, [1, 2, 3, 4]), archived_before=ArchivedBefore(5, names(1, [5])[0]))
    v = verdict("WG-ACT-004", listed, pg())
    assert v.result == "FAIL" and "000000010000000000000005 is reported archived" in v.message
    empty = archive([], archived_before=ArchivedBefore(5, names(1, [5])[0]))
    assert verdict("WG-ACT-005", empty, pg()).result == "FAIL"  # nothing raced: it is empty


def test_a_segment_copied_while_listed_is_not_called_partial() -> None:
    whole = tuple(ArchiveFile(n, "f", SEG, 0.0) for n in names(1, range(1, 4)))
    files = (*whole, ArchiveFile(names(1, [4])[0], "f", SEG // 4, 0.0))
    in_copy = archive([], files=files, archived_before=ArchivedBefore(3, names(1, [3])[0]))
    assert verdict("WG-ACT-007", in_copy, pg()).result == "PASS"
    # The same partial file older than what the server had archived is a partial segment.
    done = archive([], files=files, archived_before=ArchivedBefore(4, names(1, [4])[0]))
    v = verdict("WG-ACT-007", done, pg())
    assert v.result == "FAIL" and "(partial)" in v.message


def _owned(names_modes: dict[str, tuple[str, int]]) -> Ownership:
    files = {
        n: FileMode(n, owner, owner, 102 if owner == "postgres" else 0, 105, mode)
        for n, (owner, mode) in names_modes.items()
    }
    return Ownership(files, RestoreUser("postgres", 102, frozenset({105})))


def test_archived_files_are_the_owners_read_by_the_restore_user_written_by_no_one_else() -> None:
    segments = names(1, range(1, 6))
    good = {n: ("postgres", 0o600) for n in segments}
    assert verdict("WG-ACT-008", archive(segments, ownership=_owned(good)), pg()).result == "PASS"
    writable = {**good, segments[-1]: ("postgres", 0o666)}
    v = verdict("WG-ACT-008", archive(segments, ownership=_owned(writable)), pg())
    assert v.result == "FAIL" and f"{segments[-1]} (0666)) writable by others" in v.message
    root = {**good, segments[-1]: ("root", 0o600)}
    v = verdict("WG-ACT-008", archive(segments, ownership=_owned(root)), pg())
    assert v.result == "FAIL" and "not readable by postgres, whom the restore runs as" in v.message
    unknown = archive(segments, ownership="the restore user is unknown on the host: id: no user")
    assert verdict("WG-ACT-008", unknown, pg()).result == "ERROR"


def test_a_symlinked_segment_is_not_judged_by_its_links_mode() -> None:
    segments = names(1, range(1, 6))
    files = tuple(ArchiveFile(n, "l" if n == segments[1] else "f", SEG, 0.0) for n in segments)
    own = _owned({n: ("postgres", 0o777 if n == segments[1] else 0o600) for n in segments})
    v = verdict("WG-ACT-008", archive([], files=files, ownership=own), pg())
    assert v.result == "PASS", v.message  # the link is WG-ACT-004/007's finding


def test_after_a_base_backup_the_segment_its_history_file_names_is_judged() -> None:
    """pg_stat_archiver's last archived file is the backup history file after a base backup:
    the segment it names must be there and whole (a truncated one passed before)."""
    start = names(1, [4])[0]
    history = f"{start}.00000028.backup"
    whole = [ArchiveFile(n, "f", SEG, 0.0) for n in names(1, [1, 2, 3])]
    last = pg(archiver=Archiver(5, history, 1.0, 0, None, None, "t", None))
    cut = archive(
        [], files=(*whole, ArchiveFile(start, "f", 8192, 0.0), ArchiveFile(history, "f", 300, 0.0))
    )
    v = verdict("WG-ACT-004", cut, last)
    assert v.result == "FAIL" and f"{start} is 8192 bytes" in v.message
    gone = verdict(
        "WG-ACT-004", archive([], files=(*whole, ArchiveFile(history, "f", 300, 0.0))), last
    )
    assert gone.result == "FAIL" and f"{start} is not in" in gone.message
    ok = archive(
        [], files=(*whole, ArchiveFile(start, "f", SEG, 0.0), ArchiveFile(history, "f", 300, 0.0))
    )
    assert verdict("WG-ACT-004", ok, last).result == "PASS"
