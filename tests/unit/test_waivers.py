"""Waivers: every rule of the file, and what a waiver does to a result and to the gate. (Their
approval, and who may approve: test_waiver_approval.py.)"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from walguard.history.waiver_identity import Approver, IdentityError, fold
from walguard.history.waivers import ACTIVE, EXPIRED, Rules, WaiverError, Waivers, parse, read
from walguard.results import ERROR, FAIL, PASS, WAIVED, Result, exit_status

KNOWN = {"WG-ARC-004": "low", "WG-ARC-005": "high", "WG-DIR-003": "high", "WG-ARC-001": "critical"}
TODAY = date(2026, 11, 26)


def load(path: Path, known: dict[str, str] = KNOWN, *, today: date = TODAY) -> Waivers:
    """The file's rules alone, its approval left aside."""
    return parse(path, path.read_bytes(), Rules(known, today))


GOOD = """\
# accepted risks of the payments estate
waivers:
  - control: WG-ARC-004
    hosts: [db1, "pay-*"]
    reason: the seed archive_command is replaced by pgBackRest in CHG-2211
    author: j.smith
    expires: 2027-03-31
    ticket: RISK-1042
  - control: WG-ARC-005
    hosts: db3
    reason: batch host, archive_timeout handled by the job scheduler
    author: j.smith
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
    w = load(write(tmp_path, GOOD))
    assert [e.line for e in w.entries] == [3, 9]
    assert w.entries[0].hosts == ("db1", "pay-*")
    assert w.entries[0].status(TODAY) == ACTIVE
    # The last day it waives is the expiry date itself; the day after, it is expired.
    assert w.entries[1].status(date(2026, 11, 25)) == ACTIVE
    assert w.entries[1].status(TODAY) == EXPIRED
    assert len(w.sha256) == 64


def test_an_active_waiver_waives_a_failure_on_matching_hosts_only(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD))
    waived = w.apply(result("pay-eu-1", "WG-ARC-004"))
    assert waived.result == WAIVED
    assert waived.message == "found it"  # the finding stays, beside its justification
    assert waived.waiver is not None and waived.waiver["ticket"] == "RISK-1042"
    assert w.apply(result("db2", "WG-ARC-004")).result == FAIL
    assert w.apply(result("db1", "WG-DIR-003")).result == FAIL


def test_an_error_or_a_pass_is_never_waived(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD))
    assert w.apply(result("db1", "WG-ARC-004", ERROR)).result == ERROR
    assert w.apply(result("db1", "WG-ARC-004", PASS)).result == PASS


def test_an_expired_waiver_waives_nothing_and_is_reported(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD))
    res = w.apply(result("db3", "WG-ARC-005"))
    assert res.result == FAIL
    record = w.record([res, w.apply(result("db1", "WG-ARC-004"))])
    expired = record["entries"][1]
    assert expired["status"] == EXPIRED and expired["no_longer_waived"] == ["db3:WG-ARC-005"]
    assert record["entries"][0]["waived"] == ["db1:WG-ARC-004"]


def test_waived_failures_do_not_fail_the_gate_but_the_others_do(tmp_path: Path) -> None:
    w = load(write(tmp_path, GOOD))
    results = [w.apply(result("db1", "WG-ARC-004")), result("db1", "WG-ARC-005", PASS)]
    assert exit_status(results, "low") == 0
    results.append(w.apply(result("db3", "WG-ARC-005")))  # expired: still a failure
    assert exit_status(results, "low") == 1


FULLWIDTH = "\uff4a.\uff53\uff4d\uff49\uff54\uff48"  # j.smith in fullwidth letters
CRITICAL = GOOD.replace("WG-ARC-005", "WG-ARC-001")  # its second waiver, of a critical control


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("WG-ARC-005", "WG-ARC-999"), "waivers.yml:9: key 'control': no control "),
        (GOOD.replace("WG-ARC-005", "archive"), "waivers.yml:9: key 'control': 'archive' is not"),
        (GOOD.replace("    ticket: RISK-0999\n", ""), "waivers.yml:9: key 'ticket': missing"),
        (GOOD.replace("ticket: RISK-0999", "tickt: RISK-0999"), "waivers.yml:14: key 'tickt'"),
        (GOOD.replace("2026-11-25", "next year"), "waivers.yml:13: key 'expires'"),
        (GOOD.replace("2026-11-25", "2026-11-25T10:00:00"), "waivers.yml:13: key 'expires'"),
        (GOOD.replace("hosts: db3", "hosts: []"), "waivers.yml:10: key 'hosts'"),
        (
            GOOD.replace(
                "reason: batch host, archive_timeout handled by the job scheduler", "reason: ''"
            ),
            "waivers.yml:11: key 'reason'",
        ),
        (GOOD.replace("hosts: db3\n", "hosts: db3\n    hosts: db4\n"), "key 'hosts': given"),
        ("waivers:\n  - just a string\n", "waivers.yml:2: a waiver is a mapping"),
        ("risks: []\n", "waivers.yml:1: expected a list of waivers or one key"),
        ("waivers: {a: 1}\n", "waivers.yml:1: expected a list of waivers"),
        ("waivers: [\n", "not valid YAML"),
        # The approver is whoever signs the file: a file that still names one says how to sign.
        (
            GOOD.replace("    ticket: RISK-0999", "    approver: a.jones\n    ticket: RISK-0999"),
            "waivers.yml:14: key 'approver': the approver is no longer written in the file: it "
            "is whoever signs it. Remove this key, then have the approver run `walguard "
            "waivers approve",
        ),
        # An author in another script's look-alike letters is refused, not compared.
        (
            GOOD.replace(
                "author: j.smith\n    expires: 2026", "author: j.sm\u0456th\n    expires: 2026"
            ),
            "waivers.yml:12: key 'author': 'j.sm\u0456th' holds '\u0456' (U+0456 CYRILLIC "
            "SMALL LETTER BYELORUSSIAN-UKRAINIAN I)",
        ),
        # A critical control: every host named, and an end within 90 days.
        (
            CRITICAL.replace("hosts: db3", 'hosts: "*"').replace("2026-11-25", "9999-12-31"),
            "waivers.yml:10: key 'hosts': WG-ARC-001 is a critical control: its waiver names each "
            "host (a list of host names, no *, ? or [ glob)",
        ),
        (
            CRITICAL.replace("hosts: db3", "hosts: [db1, db3]").replace("2026-11-25", "9999-12-31"),
            "waivers.yml:13: key 'expires': WG-ARC-001 is a critical control: its waiver expires "
            "within 90 days, by 2027-02-24 (not 9999-12-31)",
        ),
        (CRITICAL.replace("hosts: db3", "hosts: [db1, 'db[23]']"), ":10: key 'hosts': WG-ARC-001"),
        (
            CRITICAL.replace("hosts: db3", "hosts: db?"),
            ":10: key 'hosts': WG-ARC-001 is a critical",
        ),
        (CRITICAL.replace("2026-11-25", "2027-02-25"), ":13: key 'expires': WG-ARC-001 is a crit"),
    ],
    ids=lambda v: " ".join(v.split())[-40:],
)
def test_a_malformed_waiver_is_an_error_naming_file_line_and_key(
    tmp_path: Path, text: str, where: str
) -> None:
    with pytest.raises(WaiverError) as caught:
        load(write(tmp_path, text))
    assert where in str(caught.value)


def test_a_critical_control_is_waived_host_by_host_for_90_days_at_most(tmp_path: Path) -> None:
    last_day = TODAY + timedelta(days=90)
    text = CRITICAL.replace("hosts: db3", "hosts: [db1, db3]")
    w = load(write(tmp_path, text.replace("2026-11-25", last_day.isoformat())))
    assert w.entries[1].hosts == ("db1", "db3") and w.entries[1].expires == last_day
    assert w.apply(result("db3", "WG-ARC-001", severity="critical")).result == WAIVED
    assert w.apply(result("db2", "WG-ARC-001", severity="critical")).result == FAIL
    # The policy may shorten (or lengthen, up to a year) how far ahead it may end.
    with pytest.raises(WaiverError, match="expires within 30 days, by 2026-12-26"):
        parse(w.path, w.data, Rules(KNOWN, TODAY, max_days=30))
    # A control that is not critical keeps globs and any end date.
    lax = GOOD.replace("hosts: db3", 'hosts: "*"').replace("2026-11-25", "9999-12-31")
    assert load(write(tmp_path, lax)).entries[1].hosts == ("*",)


@pytest.mark.parametrize(
    "same",
    # Separators, case, fullwidth letters, an accent, ASCII look-alikes, an address.
    ["j.smith", "jsmith", "J.Smith", "j_smith", "J Smith", "j-smith", FULLWIDTH, "j.sm\u00edth",
     "j.srnith", "j.smlth", "J.SM1TH", "j.smith@bank.example"],
)  # fmt: skip
def test_one_person_written_differently_is_the_same_person(same: str) -> None:
    assert Approver("j.smith", ()).is_(same)
    assert fold(same) == fold("j.smith") or same.endswith("@bank.example")


def test_other_people_and_names_that_cannot_be_compared() -> None:
    jones = Approver("Alice Jones", ("a.jones@bank.example",))
    assert not jones.is_("j.smith") and not jones.is_("b.jones")
    assert jones.is_("alice.jones") and jones.is_("a.jones") and jones.is_("A_Jones@other.example")
    for name in ("j.sm\u0456th", "\u0458.smith", "j.smith\u200d", "\u03b1lice", "..."):
        with pytest.raises(IdentityError):
            fold(name)


def test_an_empty_file_waives_nothing(tmp_path: Path) -> None:
    assert load(write(tmp_path, "waivers: []\n")).entries == ()
    assert load(write(tmp_path, "")).entries == ()


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match="cannot read"):
        read(tmp_path / "nope.yml")


def test_a_waivers_file_of_nested_aliases_is_refused_by_the_size_limit(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        ref = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{ref}]")
    bomb = "\n".join(levels) + "\nwaivers: []\n"
    with pytest.raises(WaiverError, match="more than 1,000,000 nodes once its aliases"):
        load(write(tmp_path, bomb))


def test_an_impossible_date_is_the_files_error_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("2027-03-31", "2027-31-03"))
    with pytest.raises(
        WaiverError, match=r"waivers\.yml:\d+: key 'expires': '2027-31-03' is not a date"
    ):
        load(path)
