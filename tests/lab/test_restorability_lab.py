"""The data-loss window (WG-RST-002) on a real primary: commits wait while its archiver is stopped,
the control measures them from the WAL and FAILs once the oldest is older than the RPO, and PASSes
again once they are archived. The RPO is one minute here (the policy's smallest), so this test
waits one out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.lab.support import Lab, audit, inventory_with

pytestmark = pytest.mark.lab

PSQL = "sudo -n -u postgres psql -XAtq -v ON_ERROR_STOP=1"
ARCHIVER = "'^postgres: 15/main: archiver'"


def _rpo_one_minute(tmp_path: Path, host: str) -> Path:
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][host]["walguard_rpo_minutes"] = 1
    inv.write_text(yaml.safe_dump(doc))
    return inv


def test_commits_waiting_longer_than_the_rpo_fail_and_pass_once_archived(
    lab: Lab, tmp_path: Path
) -> None:
    db3 = lab.hosts[2]
    inventory = _rpo_one_minute(tmp_path, db3.name)

    def window() -> tuple[str, str]:
        result = audit(tmp_path, "-k", "WG-RST-002", "--limit", db3.name, inventory=inventory)
        (control,) = result.doc["hosts"][db3.name]["controls"]
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
        assert f"(xid {first} at " in message and "within the RPO of 1 min" in message, message
        assert f"(xid {last})" in message, message  # the newest commit that waits

        time.sleep(max(0.0, committed + 62 - time.monotonic()))
        result, message = window()
        assert result == "FAIL", message
        assert f"the oldest commit not yet archived (xid {first} at " in message, message
        assert "beyond the RPO of 1 min" in message, message
    finally:
        lab.ssh(db3, f"sudo -n pkill -CONT -f {ARCHIVER}")
    lab.ssh(db3, f"{PSQL} -c 'SELECT pg_switch_wal()'")
    for _ in range(60):
        result, message = window()
        if result == "PASS":
            break
        time.sleep(0.5)
    assert result == "PASS" and "no commit waits to be archived" in message, message
    assert f"(xid {last}, in " in message, message  # the archive now gives back the last one
