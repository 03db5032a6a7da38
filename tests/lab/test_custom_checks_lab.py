"""A bank's own control, audited beside the shipped ones on the lab: from --checks DIR and from
the inventory's walguard_checks_dirs, judged on every host in results.json and junit.xml, failing
where the bank's threshold says so, with its remediation script (beside its directory) planned."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.lab.support import Audit, Lab, audit
from walguard.controls import load_all
from walguard.lab import settings

pytestmark = pytest.mark.lab

# archive_timeout at most the bank's maximum (300 s unless the host says otherwise); the lab's
# hosts archive at least every minute.
BANK_CONTROL = textwrap.dedent(
    """\
    from walguard.controls import control, fail
    from walguard.facts.host import Postgres
    from walguard.inventory.load import Target


    @control(
        "WG-BNK-001",
        "archive_timeout is at most the bank's maximum",
        severity="medium",
        rationale="The bank's own rule: a WAL segment leaves the host at least every 5 minutes.",
        remediation="WG-BNK-001.sh",
    )
    def test_archive_timeout_at_most_bank_maximum(pg: Postgres, target: Target) -> None:
        limit = target.vars.get("bank_archive_timeout_max_s", 300)
        seconds = int(pg.setting("archive_timeout").setting)
        if seconds == 0 or seconds > limit:
            fail(f"archive_timeout is {seconds} s; the bank's maximum here is {limit} s")
    """
)
BANK_SCRIPT = textwrap.dedent(
    """\
    # control: WG-BNK-001
    # changes: sets archive_timeout to 30 s (ALTER SYSTEM) and reloads
    # disruptive: no (reload)
    current=$(pg_sql "SELECT setting FROM pg_settings WHERE name = 'archive_timeout';")
    if [ "$current" -eq 0 ] || [ "$current" -gt 30 ]; then
      change "ALTER SYSTEM SET archive_timeout = 30 (was $current s) and reload" \\
        pg_sql "ALTER SYSTEM SET archive_timeout = 30; SELECT pg_reload_conf();"
    fi
    finish
    """
)


def _bank(base: Path) -> Path:
    (base / "checks").mkdir(parents=True)
    (base / "remediation").mkdir()
    (base / "checks" / "test_bank.py").write_text(BANK_CONTROL)
    (base / "remediation" / "WG-BNK-001.sh").write_text(BANK_SCRIPT)
    return base / "checks"


def _junit(result: Audit, tmp_path: Path) -> dict[str, str]:
    """testcase name -> failure / skipped / passed, for the bank's control."""
    (path,) = tmp_path.glob("reports-*/*/junit.xml")
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.get("name", "").startswith("WG-BNK-001["):
            kinds = [child.tag for child in case if child.tag in ("failure", "skipped", "error")]
            out[case.get("name", "")] = kinds[0] if kinds else "passed"
    return out


def _bank_results(result: Audit) -> dict[str, tuple[str, str, str]]:
    return {
        host: (c["result"], c["message"], c["nodeid"])
        for host, h in result.doc["hosts"].items()
        for c in h["controls"]
        if c["control"] == "WG-BNK-001"
    }


def test_a_controls_directory_is_audited_beside_the_shipped_controls(
    lab: Lab, tmp_path: Path
) -> None:
    checks = _bank(tmp_path / "bank")
    result = audit(tmp_path, "--checks", str(checks))
    assert result.exit_status == 0, result.stdout + result.stderr
    found = _bank_results(result)
    assert {h: r[0] for h, r in found.items()} == {h.name: "PASS" for h in lab.hosts}
    # Named by its file relative to the directory pytest was given, then ::WG-ID[host].
    assert found["db1"][2] == "test_bank.py::WG-BNK-001[db1]"
    meta = result.doc["controls"]["WG-BNK-001"]
    assert (meta["severity"], meta["remediation"]) == ("medium", "WG-BNK-001.sh")
    shipped = sum(1 for c in load_all().values() if not c.opt_in and c.id != "WG-BNK-001")
    pairs = len(lab.hosts) * (shipped + 1)
    assert (result.doc["selected"], result.doc["total"], result.doc["missing"]) == (
        pairs,
        pairs,
        [],
    )
    assert _junit(result, tmp_path) == {f"WG-BNK-001[{h.name}]": "passed" for h in lab.hosts}


def test_users_controls_with_xdist_workers(lab: Lab, tmp_path: Path) -> None:
    """Each worker collects the directory too, and the controller expects its pairs."""
    checks = _bank(tmp_path / "bank")
    result = audit(tmp_path, "--checks", str(checks), "-n", "2", "-k", "WG-BNK or WG-ARC")
    assert result.exit_status == 0, result.stdout + result.stderr
    assert {h: r[0] for h, r in _bank_results(result).items()} == {
        h.name: "PASS" for h in lab.hosts
    }
    assert result.doc["missing"] == []
    assert result.doc["selected"] == len(lab.hosts) * 6  # WG-ARC-001..005 and WG-BNK-001


def test_the_inventory_names_the_directory_and_the_banks_threshold(
    lab: Lab, tmp_path: Path
) -> None:
    """walguard_checks_dirs (relative to the inventory) for the whole run; db2's stricter
    maximum makes the control FAIL there only, and its script beside the directory is planned
    (check mode: nothing changes)."""
    inventory = tmp_path / "inv" / "lab.yml"
    inventory.parent.mkdir()
    _bank(tmp_path / "inv" / "bank")
    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    doc["all"]["vars"]["walguard_checks_dirs"] = ["bank/checks"]
    doc["all"]["children"]["lab"]["hosts"]["db2"]["bank_archive_timeout_max_s"] = 30
    inventory.write_text(yaml.safe_dump(doc))
    result = audit(tmp_path, "--remediate=plan", "-k", "WG-BNK-001", inventory=inventory)
    # A medium control failed: the gate's default threshold.
    assert result.exit_status == 1, result.stdout + result.stderr
    found = _bank_results(result)
    assert {h: r[0] for h, r in found.items()} == {"db1": "PASS", "db2": "FAIL", "db3": "PASS"}
    assert found["db2"][1] == "archive_timeout is 60 s; the bank's maximum here is 30 s"
    (record,) = [c for c in result.doc["hosts"]["db2"]["controls"] if c["control"] == "WG-BNK-001"]
    assert record["remediation"]["status"] == "PLANNED"
    assert record["remediation"]["script"] == "WG-BNK-001.sh"
    assert record["remediation"]["output"] == (
        "would: ALTER SYSTEM SET archive_timeout = 30 (was 60 s) and reload"
    )
    assert _junit(result, tmp_path) == {
        "WG-BNK-001[db1]": "passed",
        "WG-BNK-001[db2]": "failure",
        "WG-BNK-001[db3]": "passed",
    }
    db2 = next(h for h in lab.hosts if h.name == "db2")
    shown = lab.ssh(db2, "sudo -n -u postgres psql -XAtq -c 'SHOW archive_timeout'").stdout
    assert shown.strip() == "1min"  # a plan changes nothing
