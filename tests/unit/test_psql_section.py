"""PostgreSQL's facts as psql on the host prints them in the collector's round trip
(walguard.facts.postgres.psql_section): the section parsed from output captured on the lab
(tests/unit/data/capture.py --psql), and the command line run in a real shell."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from walguard.errors import FactUnavailable
from walguard.facts import postgres as pgfacts
from walguard.facts.sections import split_sections
from walguard.policy.model import Connect

DATA = Path(__file__).parent / "data"
TOKEN = "@@WG-0123456789abcdef@@"


def section(name: str) -> tuple[int, str]:
    found = split_sections((DATA / f"psql-{name}.txt").read_text(), TOKEN)[pgfacts.SECTION]
    return found.rc, found.output


def test_the_facts_come_from_the_one_json_line() -> None:
    facts, raw = pgfacts.parse_psql_section(*section("pristine"))
    assert facts.archiver is not None and facts.setting("archive_mode").setting == "on"
    assert int(json.loads(raw)["system_identifier"]) == facts.system_identifier > 0


def test_a_warning_before_the_json_line_is_not_the_facts() -> None:
    rc, out = section("pristine")
    facts, _ = pgfacts.parse_psql_section(rc, f"WARNING:  some server notice\n{out}")
    assert facts.setting("archive_mode").setting == "on"


def test_psql_s_own_failure_is_the_reason_once() -> None:
    with pytest.raises(FactUnavailable) as info:
        pgfacts.parse_psql_section(*section("no-server"))
    assert str(info.value) == (
        "postgresql: psql: error: connection to server on socket "
        '"/var/run/postgresql/.s.PGSQL.5499" failed: No such file or directory'
    )


@pytest.mark.parametrize(
    ("rc", "out", "reason"),
    [
        (124, "", "postgresql: psql timed out (no answer within its timeout)"),
        (0, "", "postgresql: psql printed no facts: ''"),
        (0, "not json\n", "postgresql: psql printed no facts: 'not json'"),
        (0, "{not json\n", "postgresql (psql): unparsable output '{not json'"),
        (3, "", "postgresql: psql exit status 3"),
    ],
)
def test_nothing_else_is_facts(rc: int, out: str, reason: str) -> None:
    with pytest.raises(FactUnavailable) as info:
        pgfacts.parse_psql_section(rc, out)
    assert str(info.value) == reason


def test_the_command_frames_its_output_in_a_real_shell(tmp_path: Path) -> None:
    """Where no psql can be run (here: a PATH with timeout and env but no psql), the section
    still ends, with env's status 127, which is what sends walguard to the socket forward."""
    for tool in ("timeout", "env"):
        (tmp_path / tool).symlink_to(f"/usr/bin/{tool}")
    line = pgfacts.psql_section(Connect(pg_socket_dir="/nonexistent"), TOKEN)
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                          env={"PATH": str(tmp_path)}, check=False)  # fmt: skip
    found = split_sections(done.stdout, TOKEN)[pgfacts.SECTION]
    assert found.rc == 127 and "psql" in found.output, done
