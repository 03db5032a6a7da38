"""WG-RST-001 with walguard_base_backup_source: pgbackrest, on what `pgbackrest --stanza=main
--output=json info` printed on the lab (Debian's pgBackRest 2.45, PostgreSQL 15, db3 with the
pgbackrest-archiving scenario: repository /pg_archive/pgbackrest, stanza main), each as the
collector's pgbackrest_info section holds it (the clock: `date -u +%s` on db3 right after):
- pgbackrest-info-full.json: after `pgbackrest --stanza=main --type=full --start-fast backup`;
- pgbackrest-info-incr.json: then after an incr backup (`--type=incr`); the same bytes again
  after `pgbackrest --stanza=main stop` (info does not show a stop) and again after segment
  ...07, which only the full backup needs, was deleted from the repository (info's archive
  min/max is a range: a hole inside it is `pgbackrest verify`'s to find, WG-ACT-005);
- pgbackrest-info-no-backup.json: right after stanza-create, before any backup;
- pgbackrest-info-backup-info-unreadable.json: backup.info and backup.info.copy chmod 000;
- pgbackrest-info-archive-info-missing.json: archive.info and archive.info.copy moved away;
- pgbackrest-info-no-stanza.json: `--stanza=nosuch`;
- pgbackrest-info-range-short.json: the pgbackrest-archiving scenario's full backup, then every
  segment up to its first (...05 to ...07) deleted from the repository;
- pgbackrest-info-collector.txt: the date and pgbackrest_info sections of an audit of db3 right
  after the pgbackrest-archiving scenario (which takes a full backup), as the collector framed
  them.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests.captured import captured_sections
from walguard.controls import FUNCTIONS, load_all
from walguard.errors import FactUnavailable
from walguard.facts.collect import _backups, collector_command
from walguard.facts.host import HostFacts
from walguard.facts.pgbackrest_backups import PgBackRestInfo, parse_pgbackrest_info
from walguard.facts.postgres_state import Archiver, Postgres
from walguard.facts.sections import Section
from walguard.inventory.load import Target
from walguard.judge import Verdict, judge
from walguard.part import Part
from walguard.policy.model import Connect, Policy, PolicyError, policy_for

DATA = Path(__file__).parent / "data"
POLICY = Policy(base_backup_source="pgbackrest", pgbackrest_stanza="main")
load_all()


def sections(output: str, *, rc: int = 0, now: datetime | None = None) -> dict[str, Section]:
    found = {"pgbackrest_info": Section("pgbackrest_info", output, rc)}
    if now is not None:
        found["date"] = Section("date", f"{int(now.timestamp())}\n", 0)
    return found


def capture(name: str) -> str:
    return (DATA / f"pgbackrest-info-{name}.json").read_text()


def read(name: str, now: datetime | None = None) -> PgBackRestInfo:
    return parse_pgbackrest_info(sections(capture(name), now=now), "main")


def server(system: int) -> Postgres:
    """The server's facts as far as WG-RST-001 reads them for pgBackRest: its system identifier."""
    archiver = Archiver(0, None, None, 0, None, None, None, None)
    return Postgres("15", False, {}, archiver, (), None, 1, 16 << 20, system)


def verdict(
    found: PgBackRestInfo | str, policy: Policy = POLICY, system: int | None = None
) -> Verdict:
    """WG-RST-001's verdict; the archive directory was not read at all: a pgBackRest host is
    judged by pgBackRest's account, and the server only for its system identifier (by default
    the one the newest backup is of: the stanza is this cluster's)."""
    backups = Part(found) if isinstance(found, PgBackRestInfo) else Part(error=found)
    newest = found.newest() if isinstance(found, PgBackRestInfo) else None
    own = found.system_of(newest) if isinstance(found, PgBackRestInfo) and newest else None
    pg = server(system if system is not None else own or 1)
    facts = HostFacts("db3", "x", True, None, Part(error="not read"), Part(pg),
                      Part("active"), 1, backups=backups)  # fmt: skip
    target = Target("db3", "x", 22, None, None, False, (), MappingProxyType({}), policy=policy)
    return judge(FUNCTIONS["WG-RST-001"], facts, target)


def edited(name: str, change: Any, now: datetime | None = None) -> PgBackRestInfo:
    """A capture with one thing changed in its JSON (`change` edits the stanza in place)."""
    doc = json.loads(capture(name))
    change(doc[0])
    return parse_pgbackrest_info(sections(json.dumps(doc), now=now), "main")


# `date -u +%s` on db3 right after each capture.
FULL_AT = datetime.fromtimestamp(1796604691, UTC)
INCR_AT = datetime.fromtimestamp(1796604694, UTC)
SHORT_AT = datetime.fromtimestamp(1796605035, UTC)


def test_the_full_backup_is_read_as_pgbackrest_reports_it() -> None:
    info = read("full", FULL_AT)
    assert (info.stanza, info.status_code, info.status_message) == ("main", 0, "ok")
    assert info.repo_status == () and not info.backup_running and info.said == ()
    (backup,) = info.backups
    assert (backup.label, backup.type, backup.error) == ("20261207-005127F", "full", False)
    assert backup.start == datetime(2026, 12, 7, 0, 51, 27, tzinfo=UTC)
    assert backup.stop == datetime(2026, 12, 7, 0, 51, 30, tzinfo=UTC)
    assert (backup.archive_start, backup.archive_stop) == (
        "000000010000000000000007",
        "000000010000000000000008",
    )
    assert (backup.db_id, backup.repo_key) == (1, 1)
    assert backup.size == 23016798  # the database restored, not the repository's compressed copy
    archive = info.archive_of(backup)
    assert archive is not None and archive.archive_id == "15-1"
    assert (archive.min, archive.max) == ("000000010000000000000005", "000000010000000000000008")
    assert info.read_at == FULL_AT


def test_the_full_backup_passes_naming_what_pgbackrest_says() -> None:
    v = verdict(read("full", FULL_AT))
    assert v.result == "PASS", v.message
    assert v.message.startswith(
        "20261207-005127F (full, 2026-12-07 00:51:27 UTC to 2026-12-07 00:51:30 UTC), "
        "finished 0 min ago, no error flag; it needs WAL 000000010000000000000007 to "
        "000000010000000000000008, inside pgBackRest's archive range 000000010000000000000005 "
        "to 000000010000000000000008 (15-1); stanza status ok"
    ), v.message


def test_the_newest_backup_by_its_stop_time_is_judged() -> None:
    info = read("incr", INCR_AT)
    assert [b.type for b in info.backups] == ["full", "incr"]
    newest = info.newest()
    assert newest is not None and newest.label == "20261207-005127F_20261207-005133I"
    v = verdict(info)
    assert v.result == "PASS", v.message
    assert "(incr, 2026-12-07 00:51:33 UTC to 2026-12-07 00:51:34 UTC)" in v.message
    assert "needs WAL 00000001000000000000000A to 00000001000000000000000A" in v.message
    # Listed oldest first by pgBackRest; walguard goes by the stop time, not by the order.
    reordered = replace(info, backups=info.backups[::-1])
    assert reordered.newest() == newest


def test_what_the_collector_framed_is_what_is_judged() -> None:
    found = captured_sections("pgbackrest-info-collector.txt")
    info = parse_pgbackrest_info(found, "main")
    assert info.read_at == datetime.fromtimestamp(1796605034, UTC)
    (backup,) = info.backups
    assert backup.label == "20261207-005708F"
    assert verdict(info).result == "PASS"


@pytest.mark.parametrize(
    ("hours", "max_age", "result"),
    [(25, 26, "PASS"), (27, 26, "FAIL"), (2, 1, "FAIL"), (0.5, 1, "PASS")],
)
def test_the_age_is_from_its_stop_on_the_hosts_clock(
    hours: float, max_age: int, result: str
) -> None:
    stop = datetime(2026, 12, 7, 0, 51, 30, tzinfo=UTC)
    policy = replace(POLICY, base_backup_max_age_hours=max_age)
    v = verdict(read("full", stop + timedelta(hours=hours)), policy)
    assert v.result == result, v.message
    if result == "FAIL":
        assert v.message == (
            "the newest pgBackRest backup, 20261207-005127F (full, 2026-12-07 00:51:27 UTC to "
            f"2026-12-07 00:51:30 UTC), finished {hours:.1f} h ago; the policy allows "
            f"{max_age} h"
        )


def test_without_the_hosts_clock_the_age_cannot_be_told() -> None:
    v = verdict(read("full"))
    assert v.result == "ERROR" and "the host's clock was not read" in v.message


@pytest.mark.parametrize(
    ("name", "stanza", "words"),
    [
        ("no-backup", "main", "pgBackRest's stanza main reports status 2, no valid backups"),
        ("no-stanza", "nosuch", "pgBackRest's stanza nosuch reports status 1, missing stanza path"),
        (
            "backup-info-unreadable",
            "main",
            "reports status 99, other (repo1: [FileOpenError] unable to load info file "
            "'/pg_archive/pgbackrest/backup/main/backup.info' or "
            "'/pg_archive/pgbackrest/backup/main/backup.info.copy'; FileOpenError: unable to "
            "open file '/pg_archive/pgbackrest/backup/main/backup.info' for read: [13] "
            "Permission denied;",
        ),
        (
            "archive-info-missing",
            "main",
            "reports status 99, other (repo1: [FileMissingError] unable to load info file "
            "'/pg_archive/pgbackrest/archive/main/archive.info'",
        ),
    ],
)
def test_a_stanza_status_other_than_ok_fails_quoting_it(name: str, stanza: str, words: str) -> None:
    # pgBackRest exited 0 for every one of them: its status says what is wrong.
    info = parse_pgbackrest_info(sections(capture(name), now=FULL_AT), stanza)
    v = verdict(info, replace(POLICY, pgbackrest_stanza=stanza))
    assert v.result == "FAIL" and words in v.message, v.message
    assert "HINT" not in v.message and "repo1: no valid backups" not in v.message


def test_a_backup_whose_wal_has_left_the_repository_fails() -> None:
    v = verdict(read("range-short", SHORT_AT))
    assert v.result == "FAIL", v.message
    assert v.message == (
        "20261207-005708F (full, 2026-12-07 00:57:08 UTC to 2026-12-07 00:57:11 UTC) needs WAL "
        "000000010000000000000007 to 000000010000000000000008, but pgBackRest's archive range is "
        "000000010000000000000008 to 000000010000000000000008 (15-1): the backup cannot be made "
        "consistent"
    )


def _newest(stanza: dict[str, Any]) -> dict[str, Any]:
    backup: dict[str, Any] = stanza["backup"][-1]
    return backup


@pytest.mark.parametrize(
    ("change", "result", "words"),
    [
        # pgBackRest sets it when it found errors taking the backup (page checksums).
        (lambda s: _newest(s).update(error=True), "FAIL", "marks its newest backup"),
        # Backups taken before pgBackRest 2.36 have no flag: nothing says it is clean.
        (lambda s: _newest(s).pop("error"), "ERROR", "recorded no error flag"),
        # The repository lost the WAL after the backup's start (expired, deleted by hand).
        (lambda s: s["archive"][0].update(min="000000010000000000000008"), "FAIL",
         "but pgBackRest's archive range is 000000010000000000000008 to"),
        # ... or has not got its last segment yet.
        (lambda s: s["archive"][0].update(max="000000010000000000000007"), "FAIL",
         "cannot be made consistent"),
        (lambda s: s["archive"][0].update(min=None, max=None), "FAIL",
         "repository holds no WAL for the database of 20261207-005127F"),
        (lambda s: s["archive"][0]["database"].update(id=2), "FAIL", "(db id 1)"),
        (lambda s: s.update(archive=[]), "FAIL", "holds no WAL"),
        # A stanza with status ok and no backup is not one pgBackRest prints: still no pass.
        (lambda s: s.update(backup=[]), "FAIL", "has no backup"),
        (lambda s: _newest(s)["archive"].update(start=None), "ERROR", "names no WAL range"),
        (lambda s: s["status"].update(code=4, message="different across repos"), "FAIL",
         "reports status 4, different across repos"),
    ],
)  # fmt: skip
def test_each_thing_pgbackrest_reports_decides(change: Any, result: str, words: str) -> None:
    v = verdict(edited("full", change, FULL_AT))
    assert v.result == result and words in v.message, v.message


def test_a_running_backup_is_said() -> None:
    info = edited("full", lambda s: s["status"]["lock"]["backup"].update(held=True), FULL_AT)
    assert info.backup_running
    assert "stanza status ok; a backup is running" in verdict(info).message


def test_warnings_around_the_json_are_kept_and_do_not_hide_it() -> None:
    warn = "WARN: option 'repo1-retention-full' is not set for 'repo1-retention-full-type=count'"
    info = parse_pgbackrest_info(sections(f"{warn}\n{capture('full')}", now=FULL_AT), "main")
    assert info.said == (warn,) and verdict(info).result == "PASS"


@pytest.mark.parametrize(
    ("output", "rc", "words"),
    [
        ("", 0, "printed no JSON: no output"),
        ("stanza: main\n    status: ok", 0, "printed no JSON: status: ok"),
        ('[{"name": "main", "status": ', 0, "printed no JSON"),
        ("{}", 0, "not what walguard reads (TypeError: a list of stanzas expected"),
        ("[]", 0, "stanza main is not in it"),
        ('[{"name": "other", "status": {"code": 0, "message": "ok"}}]', 0, "is not in it"),
        ('[{"name": "main"}]', 0, "KeyError"),
        ('[{"name": "main", "status": {"code": "0", "message": "ok"}}]', 0, "TypeError"),
        ("runuser: failed to execute pgbackrest: No such file or directory", 127,
         "pgbackrest could not be run (exit 127): runuser: failed to execute pgbackrest"),
        ("", 124, "did not answer within the per-command timeout"),
        ("ERROR: [031]: option 'repo1-path' cannot be set multiple times", 31,
         "info failed (exit 31): ERROR: [031]: option 'repo1-path' cannot be set"),
    ],
)  # fmt: skip
def test_output_that_cannot_be_read_is_an_error_never_a_pass(
    output: str, rc: int, words: str
) -> None:
    with pytest.raises(FactUnavailable, match=r"^cannot verify: ") as info:
        parse_pgbackrest_info(sections(output, rc=rc, now=FULL_AT), "main")
    assert words in str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: _newest(s)["timestamp"].update(stop="1796604690"),
        lambda s: _newest(s)["archive"].update(start="7"),
        lambda s: _newest(s)["archive"].update(start="000000010000000000000007; rm"),
        lambda s: _newest(s).update(error="false"),
        lambda s: _newest(s).update(label=None),
        lambda s: s.update(backup={"label": "x"}),
    ],
)
def test_a_json_of_another_shape_is_an_error(change: Any) -> None:
    with pytest.raises(FactUnavailable, match=r"^cannot verify: pgbackrest info's JSON"):
        edited("full", change, FULL_AT)


def test_no_section_is_an_error() -> None:
    with pytest.raises(FactUnavailable, match="no pgbackrest_info section"):
        parse_pgbackrest_info({}, "main")
    # How the collection hands it on: the control's ERROR, with the host's name.
    part = _backups({}, POLICY, "db3")
    assert part.error == "db3: cannot verify: pgBackRest was not asked (no pgbackrest_info section)"


@pytest.mark.parametrize(("source", "tool"), [("barman", "Barman"), ("wal-g", "WAL-G")])
def test_barman_and_walg_are_an_honest_error(source: str, tool: str) -> None:
    policy = policy_for({"walguard_base_backup_source": source, "walguard_base_backup_dir": "/b"})
    # Whatever the host has (even pg_basebackup's directories): nothing is read, nothing guessed.
    part = _backups(captured_sections("backups-pristine.txt"), policy, "db3")
    said = (
        f"cannot verify: walguard does not read {tool}'s backups yet "
        f"(walguard_base_backup_source: {source})"
    )
    assert part.error == said
    v = verdict(said, policy)
    assert (v.result, v.message) == ("ERROR", said)
    assert "WG_BACKUP_DIR" not in assignments(policy)


def assignments(policy: Policy) -> list[str]:
    """The collector's parameters, as the remote shell splits its command line."""
    words = shlex.split(collector_command(policy, Connect(), "@@WG-0@@"))
    return words[1 : words.index("/bin/sh")]


def test_pg_basebackup_stays_the_source_where_a_directory_is_named() -> None:
    assert policy_for({"walguard_base_backup_dir": "/pg_backup"}).backup_source == "pg_basebackup"
    assert Policy().backup_source is None
    both = policy_for(
        {
            "walguard_base_backup_dir": "/pg_backup",
            "walguard_base_backup_source": "pgbackrest",
            "walguard_pgbackrest_stanza": "main",
        }
    )
    assert "WG_PGBACKREST_STANZA=main" in assignments(both)
    assert "WG_BACKUP_DIR" not in assignments(both)
    alone = assignments(policy_for({"walguard_base_backup_dir": "/pg_backup"}))
    assert "WG_BACKUP_DIR=/pg_backup" in alone and "WG_PGBACKREST_STANZA" not in alone


def test_the_stanza_reaches_pgbackrest_as_one_argument() -> None:
    script = (Path(__file__).parents[2] / "walguard/facts/collector/collect.sh").read_text()
    assert (
        'section pgbackrest_info runuser -u "$WG_PG_OWNER" -- pgbackrest \\\n'
        '    "--stanza=$WG_PGBACKREST_STANZA" --output=json info'
    ) in script


PGBACKREST = {"walguard_base_backup_source": "pgbackrest"}


@pytest.mark.parametrize(
    "stanza",
    [
        "main; rm -rf /",
        "$(id)",
        "`id`",
        "main\n",
        "main\nid",
        "a b",
        "",
        "-main",  # an option to pgbackrest, not a stanza
        "--repo1-path=/tmp",
        "main:backup",  # pgBackRest's section for a command's options
        "../main",
        "main/x",
        "m" * 65,
        "mäin",
        5,
        ["main"],
        True,
    ],
)
def test_a_hostile_or_malformed_stanza_is_refused(stanza: Any) -> None:
    with pytest.raises(PolicyError) as info:
        policy_for({**PGBACKREST, "walguard_pgbackrest_stanza": stanza}, "db3")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("host db3: walguard_pgbackrest_stanza: expected a pgBackRest stanza")


@pytest.mark.parametrize("stanza", ["main", "pg15-main", "db_1.prod", "Main2", "m" * 64])
def test_a_stanza_name_is_accepted(stanza: str) -> None:
    policy = policy_for({**PGBACKREST, "walguard_pgbackrest_stanza": stanza})
    assert policy.pgbackrest_stanza == stanza and policy.backup_source == "pgbackrest"


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        (PGBACKREST, "pgbackrest needs walguard_pgbackrest_stanza (the stanza's name, e.g. main)"),
        ({"walguard_pgbackrest_stanza": "main"},
         "only read with walguard_base_backup_source: pgbackrest (the source is not set)"),
        ({"walguard_pgbackrest_stanza": "main", "walguard_base_backup_dir": "/pg_backup"},
         "(the source is pg_basebackup)"),
        ({"walguard_pgbackrest_stanza": "main", "walguard_base_backup_source": "barman"},
         "(the source is barman)"),
        ({"walguard_base_backup_source": "pg_basebackup"},
         "pg_basebackup needs walguard_base_backup_dir"),
        ({"walguard_base_backup_source": "bacula"},
         "expected one of pg_basebackup, pgbackrest, barman, wal-g, got 'bacula'"),
        ({"walguard_base_backup_source": "PgBackRest"}, "expected one of"),
    ],
)  # fmt: skip
def test_a_source_without_what_it_needs_is_one_usage_line(
    variables: dict[str, Any], words: str
) -> None:
    with pytest.raises(PolicyError) as info:
        policy_for(variables, "db3", sources={k: "group_vars/db.yml:4" for k in variables})
    message = str(info.value)
    assert "\n" not in message and words in message, message
    # Where it was set, so that the file to fix is named.
    assert f"{info.value.key} (set in group_vars/db.yml:4): " in message


def test_another_clusters_stanza_fails_and_an_unread_server_is_an_error() -> None:
    """A stanza named for the wrong cluster (a repository host serving several) shows that
    cluster's healthy backups: they restore nothing of this server."""
    info = read("full", now=FULL_AT)
    newest = info.newest()
    assert newest is not None and info.system_of(newest) == 7716358325757706275
    v = verdict(info, system=7716358325757706276)
    assert v.result == "FAIL", v.message
    assert "is of database system 7716358325757706275" in v.message
    assert "this server is 7716358325757706276" in v.message
    unread = verdict(info, system=0)  # the server's identifier was not read
    assert unread.result == "ERROR" and "cannot verify whose backup" in unread.message
