"""The data-loss window (WG-RST-002) on a real primary: commits wait while its archiver is stopped,
the control measures them from the WAL and FAILs once the oldest is older than the RPO, and PASSes
again once they are archived. The RPO is 15 seconds here (walguard_rpo_minutes: 0.25), and this
test waits it out.

The host is not idle: autovacuum commits too (a host reset moments ago has its first rounds
now), so the test's commits are placed among the waiting ones, not taken to be all of them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.support import Lab, audit, inventory_with

pytestmark = pytest.mark.lab

PSQL = "sudo -n -u postgres psql -XAtq -v ON_ERROR_STOP=1"
ARCHIVER = "'^postgres: 15/main: archiver'"


RPO_MINUTES = 0.25


def _short_rpo(tmp_path: Path, host: str) -> Path:
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][host]["walguard_rpo_minutes"] = RPO_MINUTES
    inv.write_text(yaml.safe_dump(doc))
    return inv


def test_commits_waiting_longer_than_the_rpo_fail_and_pass_once_archived(
    lab: Lab, tmp_path: Path
) -> None:
    db3 = lab.hosts[2]
    inventory = _short_rpo(tmp_path, db3.name)

    measured: list[dict[str, object]] = []

    def window() -> tuple[str, str]:
        result = audit(tmp_path, "-k", "WG-RST-002", "--limit", db3.name, inventory=inventory)
        (control,) = result.doc["hosts"][db3.name]["controls"]
        measured.append(result.doc["hosts"][db3.name]["data_loss_window"])
        return control["result"], control["message"]

    lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")  # nothing of the test's written after
    time.sleep(1)
    result, message = window()
    assert result == "PASS", message
    assert "no commit waits to be archived" in message or "within the RPO" in message, message

    lab.ssh(db3, f"sudo -n pkill -STOP -f {ARCHIVER}")
    try:
        first = int(lab.ssh(db3, f"{PSQL} -c 'SELECT txid_current()'").stdout.strip())
        committed = time.monotonic()
        lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")
        last = int(lab.ssh(db3, f"{PSQL} -c 'SELECT txid_current()'").stdout.strip())
        result, message = window()
        assert result == "PASS", message
        assert "within the RPO of 0.25 min" in message, message
        oldest, newest = _waiting(message)
        assert oldest <= first and newest >= last, message  # the test's commits wait

        time.sleep(max(0.0, committed + RPO_MINUTES * 60 + 2 - time.monotonic()))
        result, message = window()
        assert result == "FAIL", message
        assert "the oldest commit not yet archived (xid " in message, message
        assert _waiting(message)[0] <= first, message
        assert "beyond the RPO of 0.25 min" in message, message
        # results.json (and so the metrics file) keeps the same measure.
        waited = measured[-1]
        assert isinstance(waited["waited_s"], float) and waited["waited_s"] > RPO_MINUTES * 60
        assert waited["oldest_unarchived_commit"]["xid"] <= first  # type: ignore[index]
    finally:
        lab.ssh(db3, f"sudo -n pkill -CONT -f {ARCHIVER}")
    lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")
    # PASS again once the archive gives back the last of the test's commits (or a later one:
    # autovacuum's, say), whatever autovacuum has written since.
    for _ in range(60):
        result, message = window()
        if result == "PASS" and _given_back(message) >= last:
            break
        time.sleep(0.5)
    assert result == "PASS", message
    assert _given_back(message) >= last, message


def _waiting(message: str) -> tuple[int, int]:
    """The oldest and the newest commit the message says wait to be archived (one commit: both)."""
    oldest = re.search(r"the oldest commit not yet archived \(xid (\d+) at ", message)
    assert oldest is not None, message
    newest = re.search(r"the newest at .*? \(xid (\d+)\)", message)
    return int(oldest.group(1)), int(newest.group(1)) if newest else int(oldest.group(1))


def _given_back(message: str) -> int:
    """The newest commit the archive gives back, by the message (0: none named)."""
    given = re.search(r"gives back commits up to .* \(xid (\d+), in ", message)
    return int(given.group(1)) if given else 0
