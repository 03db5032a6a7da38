"""Topologies that take two scenarios in a row: db3 streams from db1, then is promoted and starts
archiving its own timeline while db1 stays the pristine primary it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.support import Lab, assert_pristine, observe, row_reaches_standby, settle_db1
from walguard.lab.hosts import Host

pytestmark = pytest.mark.lab


@pytest.fixture
def db3(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[2]
    assert_pristine(observe(lab, host), host)
    yield host
    lab.walguard("lab", "scenario", "reset", host.name)


def test_a_promoted_standby_archives_its_new_timeline_and_leaves_db1_alone(
    lab: Lab, db3: Host
) -> None:
    db1 = lab.hosts[0]
    lab.walguard("lab", "scenario", "apply", db3.name, "standby-of-db1")
    settle_db1(lab)
    standby = observe(lab, db3)
    assert standby["in_recovery"] == "t"
    assert standby["sysid"] == observe(lab, db1)["sysid"]
    row_reaches_standby(lab, db3)

    lab.walguard("lab", "scenario", "apply", db3.name, "standby-promoted")
    promoted = observe(lab, db3)
    assert promoted["in_recovery"] == "f"
    assert promoted["timeline"] == "00000002"
    # The history file names the parent timeline 1 and the switch point.
    history = lab.ssh(db3, "sudo -n cat /pg_archive/00000002.history").stdout.split("\t")
    assert history[0] == "1" and "/" in history[1]
    archive = lab.ssh(db3, "sudo -n ls /pg_archive").stdout.split()
    # The old timeline's last, partial segment is archived under its own name.
    partial = [f for f in archive if f.startswith("00000001") and f.endswith(".partial")]
    assert len(partial) == 1
    # Timeline 2 goes on in that same segment, archived whole once it was switched.
    assert "00000002" + partial[0][8:24] in archive
    # db3 takes writes of its own now; db1 is still the primary on timeline 1, untouched.
    lab.ssh(db3, "sudo -n -u postgres psql -XAtq -c 'SELECT txid_current()'")
    assert_pristine(observe(lab, db1), db1)
