"""The one parser of framed sections, on collector output captured from real lab hosts: the facts
and the report's evidence read the same sections, and each section knows its lines in the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from walguard.controls import REGISTRY, load_all
from walguard.facts.sections import (
    COLLECTOR_SECTIONS,
    POSTGRES_KEYS,
    known_read,
    split_sections,
    token_of,
)
from walguard.report.evidence import HostEvidence

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
# A whole collector.txt as a run's evidence keeps it, with its run's own random token.
CAPTURE = DATA / "platform" / "db1-pristine.txt"


def test_every_section_knows_its_lines_in_the_file() -> None:
    raw = CAPTURE.read_text()
    lines = raw.split("\n")
    token = token_of(raw)
    assert token == "@@WG-599a41ed9f3f7e72@@"
    sections = split_sections(raw, token)
    assert len(sections) == 37 and set(sections) <= COLLECTOR_SECTIONS
    for name, sec in sections.items():
        begin, end = lines[sec.first_line - 2], lines[sec.last_line : sec.last_line + 2]
        assert begin == f"{token} BEGIN {name}"
        # The collector's newline before END leaves a blank line there, or none (printf '%s').
        assert any(line.startswith(f"{token} END {name} ") for line in end), name
        body = lines[sec.first_line - 1 : sec.last_line]
        assert "\n".join(body).rstrip("\n") == sec.output.rstrip("\n") or (
            sec.output == "" and body == [""]
        ), name
    assert sections["hostname"].output == "db1"
    assert (sections["hostname"].first_line, sections["hostname"].last_line) == (6, 6)
    release = sections["os_release"]
    assert (release.first_line, release.last_line) == (10, 18)
    assert release.output.startswith('PRETTY_NAME="Debian GNU/Linux 12')


def test_the_token_is_the_first_lines_and_nothing_else() -> None:
    raw = CAPTURE.read_text()
    assert token_of("collector: no frame here\n" + raw) is None
    assert token_of("") is None
    # A line inside a section cannot name another token: the first line's is the run's.
    forged = raw.replace("db1\n", "@@WG-ffffffffffffffff@@ BEGIN hostname\nevil\n", 1)
    assert token_of(forged) == "@@WG-599a41ed9f3f7e72@@"
    assert split_sections(forged, "@@WG-599a41ed9f3f7e72@@")["hostname"].output == (
        "@@WG-ffffffffffffffff@@ BEGIN hostname\nevil"
    )


def test_the_known_sections_are_the_ones_the_collector_prints() -> None:
    script = (REPO / "walguard/facts/collector/collect.sh").read_text()
    printed = set(re.findall(r"^\s*(?:pg_)?section (\w+)", script, re.M))
    assert printed == COLLECTOR_SECTIONS


def test_the_known_postgres_keys_are_the_ones_the_query_returns() -> None:
    doc = json.loads((DATA / "pgfacts-pristine.json").read_text())
    assert set(doc) == POSTGRES_KEYS
    assert known_read("postgresql.archiver") and known_read("postgresql.settings.wal_level")
    assert not known_read("postgresql.archivers") and not known_read("archive_stats")


def test_the_report_cites_the_lines_of_what_a_control_reads(tmp_path: Path) -> None:
    load_all()
    evidence = tmp_path / "evidence" / "db1"
    evidence.mkdir(parents=True)
    (evidence / "collector.txt").write_bytes(CAPTURE.read_bytes())
    (evidence / "postgresql.json").write_bytes((DATA / "pgfacts-pristine.json").read_bytes())
    host = HostEvidence.read(tmp_path, "db1")
    sections = split_sections(CAPTURE.read_text(), "@@WG-599a41ed9f3f7e72@@")
    refs = host.refs("WG-DIR-003", excerpts=True)
    assert REGISTRY["WG-DIR-003"].reads == ("archive_stat",)
    stat = sections["archive_stat"]
    assert refs == [
        {
            "file": "evidence/db1/collector.txt",
            "section": "archive_stat",
            "lines": [stat.first_line, stat.last_line],
            "keys": None,
            "excerpt": "postgres|postgres|750|directory|102|105",
        }
    ]
    # PostgreSQL's facts are cited by key; a setting by its row.
    (mode,) = host.refs("WG-ARC-001", excerpts=True)
    assert mode["file"] == "evidence/db1/postgresql.json"
    assert mode["keys"] == ["settings.archive_mode"]
    assert '"setting": "on"' in mode["excerpt"]
    # A control that declares nothing it reads stands on all of its host's evidence.
    assert REGISTRY["WG-NET-004"].reads == ()
    assert {r["file"] for r in host.refs("WG-NET-004", excerpts=False)} == {
        "evidence/db1/collector.txt",
        "evidence/db1/postgresql.json",
    }
