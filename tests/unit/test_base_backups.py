"""WG-RST-001 on facts read from real hosts: the collector's base_backups and base_backup_verify
sections captured on the lab (PostgreSQL 15, pg_basebackup -X none into /pg_backup, the
server's own pg_verifybackup with the WAL read from /pg_archive):
- backups-pristine.txt: one backup, verified;
- backups-none.txt: base-backup-missing (/pg_backup empty);
- backups-old.txt: base-backup-old (the label's START TIME three days back);
- backups-file-changed.txt: base-backup-file-changed (PG_VERSION changed, its size kept);
- backups-dir-missing.txt: /pg_backup removed; backups-unreadable.txt: /pg_backup owned by root.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests.archive_facts import archive, names, pg
from walguard.controls import FUNCTIONS, load_all
from walguard.errors import FactUnavailable
from walguard.facts.backups import BaseBackups, parse_backups
from walguard.facts.host import HostFacts
from walguard.facts.sections import split_sections
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.part import Part
from walguard.policy.model import Policy

DATA = Path(__file__).parent / "data"
POLICY = Policy(base_backup_dir="/pg_backup")
load_all()


def captured(name: str) -> BaseBackups:
    text = (DATA / name).read_text()
    match = re.search(r"^(@@WG-[0-9A-Za-z]+@@) BEGIN", text, re.MULTILINE)
    assert match is not None
    return parse_backups(split_sections(text, match.group(1)), "/pg_backup")


def verdict(backups: BaseBackups | None, *, segments: list[int] | None = None,
            policy: Policy = POLICY, **pg_changes: Any) -> Any:  # fmt: skip
    archived = names(1, segments if segments is not None else [3, 4, 5])
    found = Part(backups) if backups else Part(error="not collected")
    facts = HostFacts("db1", "x", True, None, Part(archive(archived)), Part(pg(**pg_changes)),
                      Part("active"), 1, backups=found)  # fmt: skip
    target = Target("db1", "x", 22, None, None, False, (), MappingProxyType({}), policy=policy)
    return judge(FUNCTIONS["WG-RST-001"], facts, target)


def test_the_pristine_backup_is_read_from_its_label() -> None:
    found = captured("backups-pristine.txt")
    (backup,) = found.backups
    assert backup.format == "plain" and backup.has_manifest
    assert backup.start_wal == "000000010000000000000004" and backup.start_lsn == "0/4000028"
    assert backup.start_time == datetime(2026, 12, 6, 17, 34, 9, tzinfo=UTC)
    assert backup.label == "walguard lab base backup" and backup.timeline == 1
    assert found.verification is not None and found.verification.rc == 0
    assert found.read_at == datetime.fromtimestamp(1796578462, UTC)


def test_the_pristine_backup_passes_with_what_it_established() -> None:
    v = verdict(captured("backups-pristine.txt"))
    assert v.result == "PASS", v.message
    assert "verified by pg_verifybackup (checksums)" in v.message
    assert "every segment from 000000010000000000000004 on (2)" in v.message


@pytest.mark.parametrize(
    ("name", "result", "words"),
    [
        ("backups-none.txt", "FAIL", "no base backup in /pg_backup"),
        ("backups-dir-missing.txt", "FAIL", "no base backup: /pg_backup does not exist"),
        ("backups-old.txt", "FAIL", "is 72.0 h old; the policy allows 26 h"),
        ("backups-file-changed.txt", "FAIL",
         'damaged: pg_verifybackup: error: checksum mismatch for file "PG_VERSION"'),
    ],
)  # fmt: skip
def test_each_break_fails_with_its_own_words(name: str, result: str, words: str) -> None:
    v = verdict(captured(name))
    assert v.result == result and words in v.message, v.message


def test_an_unreadable_directory_is_an_error_not_a_failure() -> None:
    with pytest.raises(FactUnavailable, match="cannot read the base backups in /pg_backup"):
        captured("backups-unreadable.txt")


def test_no_backup_source_in_the_policy_is_an_error() -> None:
    v = verdict(None, policy=Policy())
    assert v.result == "ERROR"


def test_a_segment_missing_after_the_start_fails_and_one_before_does_not() -> None:
    found = captured("backups-pristine.txt")
    assert verdict(found, segments=[4, 6]).result == "FAIL"
    assert "000000010000000000000005" in verdict(found, segments=[4, 6]).message
    assert verdict(found, segments=[1, 4, 5]).result == "PASS"  # 2 and 3 predate the backup
    gone = verdict(found, segments=[2, 3])
    assert gone.result == "FAIL" and "holds no segment from" in gone.message


def test_a_promotion_after_the_backup_is_followed_through_the_history() -> None:
    found = captured("backups-pristine.txt")
    history = MappingProxyType({"00000002.history": "1\t0/7000000\tpromoted\n"})
    archived = names(1, [4, 5, 6]) + names(2, [7, 8]) + ["00000002.history"]
    facts = HostFacts("db1", "x", True, None,
                      Part(archive(archived, histories=history)),
                      Part(pg(timeline=2, current_walfile=names(2, [9])[0])), Part("active"), 1,
                      backups=Part(found))  # fmt: skip
    target = Target("db1", "x", 22, None, None, False, (), MappingProxyType({}), policy=POLICY)
    v = judge(FUNCTIONS["WG-RST-001"], facts, target)
    assert v.result == "PASS" and "(5)" in v.message, v.message
    holed = [n for n in archived if n != names(1, [5])[0]]
    facts = replace(facts, archive=Part(archive(holed, histories=history)))
    assert judge(FUNCTIONS["WG-RST-001"], facts, target).result == "FAIL"


def test_verification_that_says_nothing_or_cannot_run_is_an_error() -> None:
    found = captured("backups-pristine.txt")
    assert found.verification is not None
    silent = replace(found, verification=replace(found.verification, output=""))
    assert verdict(silent).result == "ERROR"
    missing = replace(found, verification=replace(found.verification, rc=127,
                                                  output="pg_verifybackup not found"))  # fmt: skip
    v = verdict(missing)
    assert v.result == "ERROR" and "pg_verifybackup not found" in v.message


def test_a_label_in_a_zone_walguard_cannot_place_is_an_error() -> None:
    text = (DATA / "backups-pristine.txt").read_text().replace(" UTC\n", " CET\n")
    token = re.search(r"^(@@WG-[0-9A-Za-z]+@@)", text, re.MULTILINE)
    assert token is not None
    found = parse_backups(split_sections(text, token.group(1)), "/pg_backup")
    v = verdict(found)
    assert v.result == "ERROR" and "zone CET" in v.message


def test_a_numeric_offset_is_placed_in_utc() -> None:
    text = (DATA / "backups-pristine.txt").read_text().replace(" UTC\n", " +01\n")
    token = re.search(r"^(@@WG-[0-9A-Za-z]+@@)", text, re.MULTILINE)
    assert token is not None
    (backup,) = parse_backups(split_sections(text, token.group(1)), "/pg_backup").backups
    assert backup.start_time == datetime(2026, 12, 6, 16, 34, 9, tzinfo=UTC)


def test_the_newest_is_chosen_by_start_time_and_a_tar_backup_cannot_be_verified() -> None:
    found = captured("backups-pristine.txt")
    (plain,) = found.backups
    later = (plain.start_time or datetime.now(UTC)) + timedelta(minutes=5)
    newer = replace(plain, name="tar-1", format="tar", start_time=later)
    both = replace(found, backups=(plain, newer))
    assert both.newest() == newer
    v = verdict(both)
    assert v.result == "ERROR" and "tar-format" in v.message
