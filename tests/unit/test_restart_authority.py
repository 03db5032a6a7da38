"""When --remediate=apply may run a script that restarts PostgreSQL (walguard.remediate.authority),
and what its outcome records. The clock is handed in; the hosts are a port nothing listens on, so
a script walguard does try to run ends as REMEDIATION FAILED (ssh refused) at once, and one it
refuses never gets that far."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from walguard.controls import SCRIPTS, load_all
from walguard.inventory.load import load_inventory
from walguard.inventory.model import Target
from walguard.policy.change_window import ChangeWindows, parse_windows
from walguard.remediate.apply import NOT_RUN, REFUSED, Outcome, remediate_host
from walguard.remediate.authority import NO_CHANGE_REF, NO_WINDOW, Authority, controller_user
from walguard.results import REMEDIATION_FAILED, REMEDIATION_REFUSED

OWNER = "Jane Doe <jane.doe@bank.example>"
WINDOW = "Sat 01:00-05:00 Europe/Berlin"
INVENTORY = f"""all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1
    walguard_ssh_retries: 0
    walguard_connect_timeout_s: 5
  hosts:
    windowed:
      walguard_change_window: "{WINDOW}"
      walguard_rollback_owner: "{OWNER}"
    unwindowed: {{}}
"""
# Saturday 12 December 2026 at 02:00 in Berlin (inside), and the Thursday before (outside).
INSIDE = datetime(2026, 12, 12, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))
OUTSIDE = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
DISRUPTIVE, PLAIN = "WG-ARC-001", "WG-DIR-004"


def clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    path = tmp_path_factory.mktemp("inventory") / "inventory.yml"
    path.write_text(INVENTORY)
    load_all()  # registers the shipped controls' scripts
    assert SCRIPTS[DISRUPTIVE].disruptive and not SCRIPTS[PLAIN].disruptive
    return {t.name: t for t in load_inventory(path)}


def authority(
    at: datetime = INSIDE,
    *,
    allow_restart: bool = True,
    change_ref: str | None = "CHG-4711",
    windows: ChangeWindows | None = None,
) -> Authority:
    return Authority(allow_restart, change_ref, windows, operator="alice", clock=clock(at))


# -- the rule --


def test_inside_the_host_s_window_with_a_change_ref_a_restart_may_run(
    hosts: dict[str, Target],
) -> None:
    assert authority().restart_refusal(hosts["windowed"]) is None


@pytest.mark.parametrize("ref", [None, "", "   "])
def test_no_change_reference_refuses(hosts: dict[str, Target], ref: str | None) -> None:
    assert authority(change_ref=ref).restart_refusal(hosts["windowed"]) == NO_CHANGE_REF
    assert NO_CHANGE_REF == "no change reference (--change-ref)"


def test_no_change_window_refuses(hosts: dict[str, Target]) -> None:
    assert authority().restart_refusal(hosts["unwindowed"]) == NO_WINDOW
    assert NO_WINDOW == "no change window (walguard_change_window or --change-window)"


def test_outside_the_window_refuses_and_says_when_it_next_opens(hosts: dict[str, Target]) -> None:
    assert authority(OUTSIDE).restart_refusal(hosts["windowed"]) == (
        f"outside the change window ({WINDOW}; next opens at 2026-12-12T01:00:00+01:00)"
    )


def test_the_option_s_windows_replace_the_host_s(hosts: dict[str, Target]) -> None:
    wednesday = parse_windows(["Wed 09:00-10:00 UTC", "Sun 09:00-10:00 UTC"])
    replaced = authority(windows=wednesday)
    assert replaced.restart_refusal(hosts["windowed"]) == (
        "outside the change window (Wed 09:00-10:00 UTC or Sun 09:00-10:00 UTC; "
        "next opens at 2026-12-13T09:00:00+00:00)"
    )
    assert replaced.record(hosts["windowed"]).change_window == wednesday.texts
    # ... and give a host without any its window for the run.
    now = datetime(2026, 12, 9, 9, 30, tzinfo=UTC)
    assert authority(now, windows=wednesday).restart_refusal(hosts["unwindowed"]) is None


def test_the_record_names_operator_windows_and_rollback_owner(hosts: dict[str, Target]) -> None:
    record = authority().record(hosts["windowed"]).as_dict()
    assert record == {"operator": "alice", "change_window": [WINDOW], "rollback_owner": OWNER}
    bare = authority().record(hosts["unwindowed"]).as_dict()
    assert bare == {"operator": "alice", "change_window": [], "rollback_owner": None}


def test_the_operator_is_the_os_user_by_default() -> None:
    import os
    import pwd

    assert Authority().operator == controller_user()
    assert controller_user().split(" ")[0] == pwd.getpwuid(os.geteuid()).pw_name


# -- remediate_host: what runs, what is refused, what is recorded --


def outcomes(target: Target, given: Authority, mode: str = "apply") -> dict[str, Outcome]:
    done = remediate_host(target, [DISRUPTIVE, PLAIN], mode=mode, authority=given, reachable=True)
    return {o.control: o for o in done}


def tried(outcome: Outcome) -> bool:
    """walguard tried to reach the host for it (and found the port closed)."""
    refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused"
    return outcome.status == REMEDIATION_FAILED and outcome.output == refused


def test_without_permission_a_restart_is_refused_and_the_fail_stands(
    hosts: dict[str, Target],
) -> None:
    got = outcomes(hosts["windowed"], authority(allow_restart=False))
    assert got[DISRUPTIVE].status == REFUSED
    assert "rerun with --allow-restart" in got[DISRUPTIVE].output
    assert tried(got[PLAIN]), got[PLAIN]


@pytest.mark.parametrize(
    ("target", "at", "ref", "reason"),
    [
        ("windowed", INSIDE, None, NO_CHANGE_REF),
        ("unwindowed", INSIDE, "CHG-4711", NO_WINDOW),
        ("windowed", OUTSIDE, "CHG-4711", "outside the change window (Sat 01:00-05:00"),
    ],
)
def test_with_permission_but_not_the_rest_a_restart_is_remediation_refused(
    hosts: dict[str, Target], target: str, at: datetime, ref: str | None, reason: str
) -> None:
    got = outcomes(hosts[target], authority(at, change_ref=ref))
    assert got[DISRUPTIVE].status == REMEDIATION_REFUSED
    assert got[DISRUPTIVE].output.startswith(reason)
    # A script that does not restart is no business of windows: it is tried all the same.
    assert tried(got[PLAIN]), got[PLAIN]
    assert "operator" not in got[PLAIN].as_dict()


def test_inside_the_window_the_restart_is_tried_and_recorded(hosts: dict[str, Target]) -> None:
    got = outcomes(hosts["windowed"], authority())
    assert tried(got[DISRUPTIVE]), got[DISRUPTIVE]
    record = got[DISRUPTIVE].as_dict()
    assert {
        k: record[k] for k in ("change_ref", "operator", "change_window", "rollback_owner")
    } == {
        "change_ref": "CHG-4711",
        "operator": "alice",
        "change_window": [WINDOW],
        "rollback_owner": OWNER,
    }


def test_a_plan_ignores_windows_but_records_them(hosts: dict[str, Target]) -> None:
    got = outcomes(hosts["windowed"], authority(OUTSIDE, change_ref=None), mode="plan")
    assert tried(got[DISRUPTIVE]) and tried(got[PLAIN])
    assert got[DISRUPTIVE].as_dict()["change_window"] == [WINDOW]


def test_an_unreachable_host_is_not_run_and_its_restart_still_recorded(
    hosts: dict[str, Target],
) -> None:
    done = remediate_host(
        hosts["windowed"], [DISRUPTIVE], mode="apply", authority=authority(), reachable=False
    )
    assert [(o.status, o.as_dict()["rollback_owner"]) for o in done] == [(NOT_RUN, OWNER)]


def test_the_refusal_is_decided_before_the_host_is_touched(hosts: dict[str, Target]) -> None:
    # Only the disruptive script, refused: no connection is made, so no ssh error either.
    done = remediate_host(
        hosts["windowed"], [DISRUPTIVE], mode="apply", authority=authority(OUTSIDE),
        reachable=True,
    )  # fmt: skip
    assert [o.status for o in done] == [REMEDIATION_REFUSED]
    assert "ssh" not in done[0].output.lower()
