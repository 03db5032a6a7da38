"""Waivers: every rule of the file, and what a waiver does to a result and to the gate."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from walguard.results import ERROR, FAIL, PASS, WAIVED, Result, exit_status
from walguard.waivers import ACTIVE, EXPIRED, WaiverError, load

KNOWN = {"WG-ARC-004", "WG-ARC-005", "WG-DIR-003"}
TODAY = date(2026, 11, 26)

GOOD = """\
# accepted risks of the payments estate
waivers:
  - control: WG-ARC-004
    hosts: [db1, "pay-*"]
    reason: the seed archive_command is replaced by pgBackRest in CHG-2211
    author: j.smith
    approver: a.jones
    expires: 2027-03-31
    ticket: RISK-1042
  - control: WG-ARC-005
    hosts: db3
    reason: batch host, archive_timeout handled by the job scheduler
    author: j.smith
    approver: b.brown
    expires: 2026-11-25
    ticket: RISK-0999
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    return path


def result(host: str, control: str, res: str = FAIL, severity: str = "high") -> Result:
    return Result(host, control, "t", severity, res, "found it", f"x::{control}[{host}]")


def test_a_good_file_is_read_with_lines_and_status(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD), KNOWN, today=TODAY)
    assert [e.line for e in w.entries] == [3, 10]
    assert w.entries[0].hosts == ("db1", "pay-*")
    assert w.entries[0].status(TODAY) == ACTIVE
    # The last day it waives is the expiry date itself; the day after, it is expired.
    assert w.entries[1].status(date(2026, 11, 25)) == ACTIVE
    assert w.entries[1].status(TODAY) == EXPIRED
    assert len(w.sha256) == 64


def test_an_active_waiver_waives_a_failure_on_matching_hosts_only(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD), KNOWN, today=TODAY)
    waived = w.apply(result("pay-eu-1", "WG-ARC-004"))
    assert waived.result == WAIVED
    assert waived.message == "found it"  # the finding stays, beside its justification
    assert waived.waiver is not None and waived.waiver["ticket"] == "RISK-1042"
    assert w.apply(result("db2", "WG-ARC-004")).result == FAIL
    assert w.apply(result("db1", "WG-DIR-003")).result == FAIL


def test_an_error_or_a_pass_is_never_waived(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD), KNOWN, today=TODAY)
    assert w.apply(result("db1", "WG-ARC-004", ERROR)).result == ERROR
    assert w.apply(result("db1", "WG-ARC-004", PASS)).result == PASS


def test_an_expired_waiver_waives_nothing_and_is_reported(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD), KNOWN, today=TODAY)
    res = w.apply(result("db3", "WG-ARC-005"))
    assert res.result == FAIL
    record = w.record([res, w.apply(result("db1", "WG-ARC-004"))])
    expired = record["entries"][1]
    assert expired["status"] == EXPIRED and expired["no_longer_waived"] == ["db3:WG-ARC-005"]
    assert record["entries"][0]["waived"] == ["db1:WG-ARC-004"]


def test_waived_failures_do_not_fail_the_gate_but_the_others_do(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD), KNOWN, today=TODAY)
    results = [w.apply(result("db1", "WG-ARC-004")), result("db1", "WG-ARC-005", PASS)]
    assert exit_status(results, "low") == 0
    results.append(w.apply(result("db3", "WG-ARC-005")))  # expired: still a failure
    assert exit_status(results, "low") == 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("WG-ARC-005", "WG-ARC-999"), "waivers.yml:10: key 'control': no control "),
        (GOOD.replace("WG-ARC-005", "archive"), "waivers.yml:10: key 'control': 'archive' is not"),
        (GOOD.replace("approver: b.brown", "approver: J.Smith"), "waivers.yml:14: key 'approver'"),
        (GOOD.replace("    ticket: RISK-0999\n", ""), "waivers.yml:10: key 'ticket': missing"),
        (GOOD.replace("ticket: RISK-0999", "tickt: RISK-0999"), "waivers.yml:16: key 'tickt'"),
        (GOOD.replace("2026-11-25", "next year"), "waivers.yml:15: key 'expires'"),
        (GOOD.replace("2026-11-25", "2026-11-25T10:00:00"), "waivers.yml:15: key 'expires'"),
        (GOOD.replace("hosts: db3", "hosts: []"), "waivers.yml:11: key 'hosts'"),
        (
            GOOD.replace(
                "reason: batch host, archive_timeout handled by the job scheduler", "reason: ''"
            ),
            "waivers.yml:12: key 'reason'",
        ),
        (GOOD.replace("hosts: db3\n", "hosts: db3\n    hosts: db4\n"), "key 'hosts': given"),
        ("waivers:\n  - just a string\n", "waivers.yml:2: a waiver is a mapping"),
        ("risks: []\n", "waivers.yml:1: expected a list of waivers or one key"),
        ("waivers: {a: 1}\n", "waivers.yml:1: expected a list of waivers"),
        ("waivers: [\n", "not valid YAML"),
    ],
    ids=lambda v: " ".join(v.split())[-40:],
)
def test_a_malformed_waiver_is_an_error_naming_file_line_and_key(
    tmp_path: Path, text: str, where: str
) -> None:
    with pytest.raises(WaiverError) as caught:
        load(write(tmp_path, text), KNOWN, today=TODAY)
    assert where in str(caught.value)


def test_an_empty_file_waives_nothing(tmp_path: Path) -> None:
    assert load(write(tmp_path, "waivers: []\n"), KNOWN).entries == ()
    assert load(write(tmp_path, ""), KNOWN).entries == ()


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match="cannot read"):
        load(tmp_path / "nope.yml", KNOWN)
