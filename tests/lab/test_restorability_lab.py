"""The data-loss window (WG-RST-002) on a real primary: commits wait while its archiver is stopped,
the control measures them from the WAL and FAILs once the oldest is older than the RPO, and PASSes
again once they are archived. The RPO is 15 seconds here (walguard_rpo_minutes: 0.25), and this
test waits it out."""

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

    lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")  # nothing written after this
    time.sleep(1)
    result, message = window()
    assert result == "PASS" and "no commit waits to be archived" in message, message

    lab.ssh(db3, f"sudo -n pkill -STOP -f {ARCHIVER}")
    try:
        first = lab.ssh(db3, f"{PSQL} -c 'SELECT txid_current()'").stdout.strip()
        committed = time.monotonic()
        lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")
        last = lab.ssh(db3, f"{PSQL} -c 'SELECT txid_current()'").stdout.strip()
        result, message = window()
        assert result == "PASS", message
        assert f"(xid {first} at " in message and "within the RPO of 0.25 min" in message, message
        assert f"(xid {last})" in message, message  # the newest commit that waits

        time.sleep(max(0.0, committed + RPO_MINUTES * 60 + 2 - time.monotonic()))
        result, message = window()
        assert result == "FAIL", message
        assert f"the oldest commit not yet archived (xid {first} at " in message, message
        assert "beyond the RPO of 0.25 min" in message, message
        # results.json (and so the metrics file) keeps the same measure.
        waited = measured[-1]
        assert isinstance(waited["waited_s"], float) and waited["waited_s"] > RPO_MINUTES * 60
        assert waited["oldest_unarchived_commit"]["xid"] == int(first)  # type: ignore[index]
    finally:
        lab.ssh(db3, f"sudo -n pkill -CONT -f {ARCHIVER}")
    lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")
    for _ in range(60):
        result, message = window()
        if result == "PASS":
            break
        time.sleep(0.5)
    assert result == "PASS" and "no commit waits to be archived" in message, message
    # The archive now gives back the last of them (or a later commit: autovacuum's, say).
    given = re.search(r"gives back commits up to .* \(xid (\d+), in ", message)
    assert given is not None and int(given.group(1)) >= int(last), message
