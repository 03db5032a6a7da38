"""The order of a staged restart: the canary first, standbys before their primary, batches that
never hold two members of one replication group, hosts of unknown role last."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from walguard.inventory.load import Target
from walguard.remediate.gates import Roles
from walguard.remediate.rollout_plan import order, replication_groups, stages


def host(name: str, address: str) -> Target:
    return Target(name, address, 22, None, None, True, ("all",), MappingProxyType({}))


DB1, DB2, DB3, DB4 = (host(f"db{i}", f"10.231.0.1{i}") for i in range(1, 5))
PRIMARY = Roles(standby=False, upstream=None, standbys=())


def standby_of(address: str) -> Roles:
    return Roles(standby=True, upstream=address, standbys=())


def test_a_standby_joins_its_primarys_group_by_its_sender_host_or_the_primarys_view() -> None:
    roles = {
        "db1": Roles(standby=False, upstream=None, standbys=("10.231.0.13",)),
        "db2": standby_of("10.231.0.11"),
        "db3": PRIMARY,  # db1 names it as a standby's address: joined from db1's side
        "db4": PRIMARY,
    }
    groups = replication_groups([DB1, DB2, DB3, DB4], roles)
    assert groups["db1"] == groups["db2"] == groups["db3"] != groups["db4"]


def test_standbys_go_first_and_hosts_of_unknown_role_last() -> None:
    roles = {"db1": PRIMARY, "db2": standby_of("10.231.0.11"), "db3": None, "db4": PRIMARY}
    assert order([DB1, DB2, DB3, DB4], roles) == ["db2", "db1", "db4", "db3"]


def test_the_canary_is_alone_then_batches_never_hold_two_of_one_group() -> None:
    roles = {
        "db1": PRIMARY,
        "db2": standby_of("10.231.0.11"),
        "db3": standby_of("10.231.0.11"),
        "db4": PRIMARY,
    }
    planned = stages([DB1, DB2, DB3, DB4], roles, batch=3)
    assert [(s.hosts, s.canary) for s in planned] == [
        (("db2",), True),
        # db3 is db1's too: db1 may not overtake it, db4 may go.
        (("db3", "db4"), False),
        (("db1",), False),
    ]


def test_one_at_a_time_by_default_and_a_batch_below_one_is_refused() -> None:
    roles = {"db1": PRIMARY, "db2": standby_of("db1")}  # a sender_host may be a name
    assert [s.hosts for s in stages([DB1, DB2], roles, batch=1)] == [("db2",), ("db1",)]
    assert stages([], {}, batch=1) == []
    with pytest.raises(ValueError, match="at least 1"):
        stages([DB1], roles, batch=0)


def test_a_surprise_on_one_host_is_its_failure_and_stops_the_rollout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hosts walguard cannot reach for their roles (port 1 refuses) go in name order; the first
    one's restart raises: it is REMEDIATION FAILED, the rollout stops, the next is not reached."""
    from walguard.audit.run import AuditRun
    from walguard.controls import load_all
    from walguard.remediate import rollout
    from walguard.remediate.authority import Authority

    load_all()
    a, b = (
        Target(n, "127.0.0.1", 1, None, None, True, ("all",), MappingProxyType({}))
        for n in ("db1", "db2")
    )

    def boom(*_: object) -> None:
        raise RuntimeError("the host said something odd")

    monkeypatch.setattr(rollout, "restart_host", boom)
    said: list[str] = []
    planned, outcomes = rollout.run_rollout(
        AuditRun([a, b], None, "medium"), [a, b], {"db1": ["WG-ARC-001"], "db2": ["WG-ARC-001"]},
        mode="apply", authority=Authority(allow_restart=True), batch=1, archive_wait_s=1,
        say=said.append,
    )  # fmt: skip
    assert [s.hosts for s in planned.stages] == [("db1",), ("db2",)]
    assert {h: r.status for h, r in planned.hosts.items()} == {
        "db1": "failed",
        "db2": "not reached",
    }
    assert planned.stopped_at == "db1: remediation stopped"
    (first,) = outcomes["db1"]
    assert first.status == "REMEDIATION FAILED" and "RuntimeError" in first.output
    (second,) = outcomes["db2"]
    assert (
        second.status == "NOT REMEDIATED"
        and second.output == "rollout stopped at db1: remediation stopped"
    )
