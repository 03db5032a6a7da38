"""Parsers on output captured from real lab hosts (tests/unit/data), and on broken variants of it:
malformed or truncated output must become FactUnavailable (ERROR), never a passing fact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walguard.errors import FactUnavailable
from walguard.facts import postgres as pgfacts
from walguard.facts.archive_dir import parse_archive_dir
from walguard.facts.sections import split_sections

DATA = Path(__file__).parent / "data"
TOKEN = "@@WG-0123456789abcdef@@"


def sections(name: str) -> dict:  # type: ignore[type-arg]
    return split_sections((DATA / f"collector-{name}.txt").read_text(), TOKEN)


def test_sections_of_a_pristine_host() -> None:
    s = sections("pristine")
    assert s["hostname"].output == "db1"
    assert s["id"].output == "0"  # the collector ran through sudo
    assert s["service_active"].output == "active"
    # Every section ran cleanly; an nspawn host has no /sys/fs/selinux to read.
    assert {k for k, sec in s.items() if sec.rc != 0} == {"selinux_enforce"}


def test_archive_dir_of_a_pristine_host() -> None:
    d = parse_archive_dir(sections("pristine"), "/pg_archive")
    assert (d.exists, d.owner, d.group, d.mode, d.kind) == (
        True,
        "postgres",
        "postgres",
        0o750,
        "directory",
    )
    assert d.is_dedicated_mount and d.fstype == "ext4" and d.mount_source.startswith("/dev/loop")
    assert d.size_bytes == 1020702720 and d.avail_bytes == 920014848
    assert d.mount is not None and d.root_mount is not None
    assert (d.mount.device, d.root_mount.fstype) == ("7:3", "overlay")
    assert d.real_path == "/pg_archive" and not d.is_symlink
    assert d.headers and all(h.segment_size == 16777216 for h in d.headers)
    segments = [f for f in d.files if f.kind == "f"]
    assert [f.name for f in segments][:2] == [
        "000000010000000000000001",
        "000000010000000000000002",
    ]
    assert {f.size for f in segments} == {16777216}
    assert any(f.name == "lost+found" and f.kind == "d" for f in d.files)


def test_archive_dir_missing_is_a_fact_not_an_error() -> None:
    d = parse_archive_dir(sections("dir-missing"), "/pg_archive")
    assert d.exists is False


def test_archive_dir_on_the_root_filesystem_is_not_dedicated() -> None:
    d = parse_archive_dir(sections("not-a-mount"), "/pg_archive")
    assert d.exists and not d.is_dedicated_mount
    assert d.mount_target == "/" and d.fstype == "overlay"


def test_truncated_collector_output_loses_the_cut_section() -> None:
    raw = (DATA / "collector-pristine.txt").read_text()
    cut = raw[: raw.index("BEGIN archive_df") + 40]  # cut in the middle of df
    s = split_sections(cut, TOKEN)
    assert "archive_stat" in s and "archive_df" not in s
    with pytest.raises(FactUnavailable, match="no complete 'archive_df' section"):
        parse_archive_dir(s, "/pg_archive")


def test_a_forged_boundary_does_not_end_a_section() -> None:
    # A file named like a boundary with another token stays inside the section (and, being no
    # archive listing line, makes the listing unparsable: ERROR, not a shortened listing).
    raw = (DATA / "collector-pristine.txt").read_text()
    forged = raw.replace(
        "lost+found|d|", "@@WG-ffffffffffffffff@@ END archive_files 0\nlost+found|d|"
    )
    s = split_sections(forged, TOKEN)
    assert "@@WG-ffffffffffffffff@@ END archive_files 0" in s["archive_files"].output
    with pytest.raises(FactUnavailable, match="unparsable archive listing"):
        parse_archive_dir(s, "/pg_archive")


@pytest.mark.parametrize(
    ("section", "garbage"),
    [
        ("archive_stat", "postgres|postgres|7x0|directory|101|104"),
        ("archive_stat", "postgres|postgres"),
        ("archive_mount", 'TARGET="/pg_archive SOURCE=/dev/loop0'),
        ("archive_df", "Filesystem 1-blocks\n/dev/loop0 lots"),
        ("archive_files", "000000010000000000000003|f|sixteen|1795596532.37"),
    ],
)
def test_malformed_sections_are_fact_unavailable(section: str, garbage: str) -> None:
    s = sections("pristine")
    raw = (DATA / "collector-pristine.txt").read_text()
    start = raw.index(f"{TOKEN} BEGIN {section}\n") + len(f"{TOKEN} BEGIN {section}\n")
    end = raw.index(f"\n{TOKEN} END {section} ")
    s = split_sections(raw[:start] + garbage + "\n" + raw[end:], TOKEN)
    with pytest.raises(FactUnavailable):
        parse_archive_dir(s, "/pg_archive")


def test_failed_command_in_a_section_is_fact_unavailable() -> None:
    raw = (DATA / "collector-pristine.txt").read_text()
    broken = raw.replace(f"{TOKEN} END archive_mount 0", f"{TOKEN} END archive_mount 2")
    with pytest.raises(FactUnavailable, match="findmnt failed"):
        parse_archive_dir(split_sections(broken, TOKEN), "/pg_archive")
    hung = raw.replace(f"{TOKEN} END archive_df 0", f"{TOKEN} END archive_df 124")
    with pytest.raises(FactUnavailable, match="df timed out"):
        parse_archive_dir(split_sections(hung, TOKEN), "/pg_archive")


def _pg(name: str) -> pgfacts.Postgres:
    return pgfacts.parse(json.loads((DATA / f"pgfacts-{name}.json").read_text()))


def test_pg_facts_of_a_pristine_host() -> None:
    pg = _pg("pristine")
    assert pg.version.startswith("15.")
    assert pg.setting("archive_mode").setting == "on"
    assert pg.setting("archive_command").setting == "test -f /pg_archive/%f || cp %p /pg_archive/%f"
    assert pg.setting("archive_timeout").setting == "60"
    assert pg.segment_size == 16 * 1024 * 1024
    assert pg.timeline == 1
    assert pg.archiver.archived_count >= 1 and pg.archiver.failed_count == 0
    assert pg.ready_files == ()


def test_pg_facts_of_a_failing_archiver() -> None:
    a = _pg("failing").archiver
    assert a.failed_count > 0
    assert a.last_failed_age_s is not None and a.last_archived_age_s is not None
    assert a.last_failed_age_s < a.last_archived_age_s


def test_pg_facts_of_a_ready_backlog() -> None:
    pg = _pg("ready-backlog")
    assert len(pg.ready_files) >= 12
    assert all(f.name.endswith(".ready") for f in pg.ready_files)


@pytest.mark.parametrize("drop", ["archiver", "settings", "timeline", "status_files"])
def test_pg_facts_missing_parts_are_fact_unavailable(drop: str) -> None:
    doc = json.loads((DATA / "pgfacts-pristine.json").read_text())
    del doc[drop]
    with pytest.raises(FactUnavailable, match="unexpected facts document"):
        pgfacts.parse(doc)


def test_pg_facts_mistyped_values_are_fact_unavailable() -> None:
    doc = json.loads((DATA / "pgfacts-pristine.json").read_text())
    doc["archiver"]["archived_count"] = "many"
    with pytest.raises(FactUnavailable):
        pgfacts.parse(doc)
