"""The restore drill (--restore-drill) on real lab hosts: the newest base backup restored into a
scratch cluster and replayed to a target between two canary rows; what a hole in the archive does
to it; a stale scratch left by a killed drill; the RTO; a scratch volume too small to drill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import browser
from tests.lab.support import Lab, audit, inventory_with
from walguard.lab import settings
from walguard.lab.hosts import Host

pytestmark = pytest.mark.lab

DRILL = ("WG-RST-003", "WG-RST-004")


@pytest.fixture
def db2(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[1]
    yield host
    lab.walguard("lab", "scenario", "reset", host.name)


def _inventory(tmp_path: Path, host: str, values: dict[str, Any]) -> Path:
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"][host].update(values)
    inv.write_text(yaml.safe_dump(doc))
    return inv


def _drill(tmp_path: Path, host: Host, inventory: Path = settings.INVENTORY_PATH) -> dict[str, Any]:
    result = audit(
        tmp_path, "--restore-drill", "-k", "RST-003 or RST-004", "--limit", host.name,
        inventory=inventory,
    )  # fmt: skip
    found = {c["control"]: c for c in result.doc["hosts"][host.name]["controls"]}
    assert set(found) == set(DRILL), result.stdout
    return found


def _scratch(lab: Lab, host: Host) -> str:
    return lab.ssh(host, f"sudo -n ls -A {settings.SCRATCH_DIR}").stdout


def test_the_drill_restores_to_its_target_and_leaves_nothing_behind(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    # A scratch a killed drill left behind, with a file in it: the next drill removes it.
    stale = f"{settings.SCRATCH_DIR}/walguard-drill-20260101T000000Z-1"
    lab.ssh(
        db2, f"sudo -n install -d -m 0700 {stale}/data && sudo -n touch {stale}/data/PG_VERSION"
    )
    found = _drill(tmp_path, db2)
    drill, rto = found["WG-RST-003"], found["WG-RST-004"]
    assert drill["result"] == "PASS", drill["message"]
    assert "recovery stopping before commit of transaction" in drill["message"]
    assert "canary A present, B absent" in drill["message"]
    assert f"removed a stale scratch {stale}" in drill["message"]
    assert rto["result"] == "PASS" and "within the RTO of 60 min" in rto["message"], rto
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"
    # The auditor's page: the drill record beside the data-loss window.
    (page,) = sorted(tmp_path.glob("reports-*/*/report.html"))
    text = browser.main_view_text(browser.dump_dom(page))
    assert "Restore drill" in text and "target reached" in text, text
    assert "A present, B absent" in text and "/ 60 min" in text, text

    # A recovery time objective shorter than the restore took.
    tight = _inventory(tmp_path, db2.name, {"walguard_rto_minutes": 0.01})
    found = _drill(tmp_path, db2, tight)
    assert found["WG-RST-003"]["result"] == "PASS"
    assert found["WG-RST-004"]["result"] == "FAIL"
    assert "beyond the RTO of 0.01 min" in found["WG-RST-004"]["message"]


def test_a_hole_in_the_archive_fails_the_drill_in_postgresqls_words(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    lab.walguard("lab", "scenario", "apply", db2.name, "archive-gap")
    found = _drill(tmp_path, db2)
    drill = found["WG-RST-003"]
    assert drill["result"] == "FAIL", drill["message"]
    assert "recovery ended before configured recovery target was reached" in drill["message"]
    assert found["WG-RST-004"]["result"] == "ERROR"
    assert _scratch(lab, db2) == ".walguard-drill.lock\n"


def test_too_little_scratch_space_is_an_error_with_the_figures(
    lab: Lab, db2: Host, tmp_path: Path
) -> None:
    lab.ssh(db2, f"sudo -n mount -t tmpfs -o size=1m walguard-small {settings.SCRATCH_DIR}")
    try:
        found = _drill(tmp_path, db2)
    finally:
        lab.ssh(db2, f"sudo -n umount {settings.SCRATCH_DIR}")
    for control in DRILL:
        assert found[control]["result"] == "ERROR", found[control]
    assert "cannot drill:" in found["WG-RST-003"]["message"]
    assert "bytes free" in found["WG-RST-003"]["message"]
