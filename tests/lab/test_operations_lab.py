"""Nightly audits and pre-change gates on the lab: drift between signed runs (archive failures
that recovered in between included), waivers, the `--baseline` gate and its exit codes."""

from __future__ import annotations

import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import browser, pki
from tests.lab.support import Audit, Lab, audit, signing_args

pytestmark = pytest.mark.lab

WAIVER = """\
waivers:
  - control: WG-ARC-004
    hosts: "db*"
    reason: the seed archive_command is replaced by pgBackRest in CHG-2211
    author: j.smith
    expires: {expires}
    ticket: RISK-1042
"""


@pytest.fixture
def signing(tmp_path: Path) -> list[str]:
    return signing_args(tmp_path)


@pytest.fixture
def db3(lab: Lab) -> Any:
    host = lab.hosts[2]
    yield host
    lab.reset_applied(host)


def results_of(run: Audit, host: str, result: str) -> set[str]:
    return run.by_result(host, result)


def test_drift_between_signed_runs_then_a_changed_previous_run_is_not_trusted(
    lab: Lab, db3: Any, tmp_path: Path, signing: list[str]
) -> None:
    root = tmp_path / "nightly"
    first = audit(tmp_path, *signing, root=root)
    assert first.doc["drift"]["previous"] is None
    assert "no earlier run of inventory" in first.doc["drift"]["note"]

    lab.walguard("lab", "scenario", "apply", db3.name, "archive-timeout-off")
    second = audit(tmp_path, *signing, root=root)
    drift = second.doc["drift"]
    assert drift["previous"]["run"] == first.doc["run"]["id"] and drift["previous"]["verified"]
    assert [(e["host"], e["control"], e["before"], e["now"]) for e in drift["newly_failing"]] == [
        ("db3", "WG-ARC-005", "PASS", "FAIL")
    ]
    assert drift["fixed"] == [] and drift["hosts_added"] == [] and drift["hosts_gone"] == []
    assert "newly failing: db3 WG-ARC-005 (PASS -> FAIL)" in second.stdout
    # What an auditor sees first, in a real browser.
    seen = browser.main_view_text(browser.dump_dom(root / second.doc["run"]["id"] / "report.html"))
    assert "Since the previous run" in seen
    assert f"Compared with run {first.doc['run']['id']}" in seen
    assert "newly failing db3 WG-ARC-005" in " ".join(seen.split())

    lab.walguard("lab", "scenario", "reset", db3.name)
    third = audit(tmp_path, *signing, root=root)
    fixed = third.doc["drift"]["fixed"]
    assert [(e["host"], e["control"], e["now"]) for e in fixed] == [("db3", "WG-ARC-005", "PASS")]

    # Someone edits the last signed run to hide a failure: the next run passes over it, says
    # why, and compares with the newest run that verifies (the second: db3 is fixed since).
    third_id = third.doc["run"]["id"]
    edited = root / third_id / "results.json"
    edited.write_text(edited.read_text().replace('"FAIL"', '"PASS"'))
    fourth = audit(tmp_path, *signing, root=root)
    drift = fourth.doc["drift"]
    assert drift["previous"]["run"] == second.doc["run"]["id"] and drift["previous"]["verified"]
    [skipped] = drift["skipped"]
    assert skipped["run"] == third_id and "changed: results.json" in skipped["why"]
    assert [(e["host"], e["control"]) for e in drift["fixed"]] == [("db3", "WG-ARC-005")]
    assert f"passed over run {third_id}: does not verify" in fourth.stdout
    assert 'id="drift-skipped"' in (root / fourth.doc["run"]["id"] / "report.html").read_text()


def _fail_then_recover_archiving(lab: Lab, host: Any) -> int:
    """Archiving fails on the host (archive_command `false`), then works again; returns the
    archiver's failed_count afterwards."""

    def psql(*statements: str) -> str:
        # One -c each: ALTER SYSTEM cannot run in the transaction of a multi-statement -c.
        args = " ".join(f"-c {shlex.quote(s)}" for s in statements)
        return lab.ssh(host, f"sudo -n -u postgres psql -XAtq -d postgres {args}").stdout

    psql("ALTER SYSTEM SET archive_command = 'false'", "SELECT pg_reload_conf()",
         "SELECT pg_sleep(1)", "SELECT pg_logical_emit_message(false, 'walguard', 'drift')",
         "SELECT pg_switch_wal()")  # fmt: skip
    try:
        for _ in range(60):
            failed = int(psql("SELECT failed_count FROM pg_stat_archiver").strip() or 0)
            if failed > 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"{host.name}: archiving never failed")
    finally:
        psql("ALTER SYSTEM RESET archive_command", "SELECT pg_reload_conf()")
    ready = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
    for _ in range(120):  # the archiver retries within a minute; wait until it caught up
        if psql(ready).strip() == "0":
            return failed
        time.sleep(1)
    raise AssertionError(f"{host.name}: archiving did not recover")


def test_an_archive_failure_that_recovered_between_two_runs_is_flagged(
    lab: Lab, tmp_path: Path, signing: list[str]
) -> None:
    root = tmp_path / "nightly"
    audit(tmp_path, *signing, root=root)
    db2 = lab.hosts[1]
    try:
        _fail_then_recover_archiving(lab, db2)
        after = audit(tmp_path, *signing, root=root)
    finally:
        # The archiver's failed_count stays up until its statistics go: a pristine host has
        # none, and the other lab tests start from pristine hosts.
        lab.walguard("lab", "scenario", "reset", db2.name)
    # Every archive control passes again today...
    assert not results_of(after, "db2", "FAIL") - {"WG-ARC-004"}
    # ...and the failure in between is not lost.
    flagged = [a for a in after.doc["drift"]["archive_failures"] if a["host"] == "db2"]
    assert len(flagged) == 1 and flagged[0]["kind"] == "increase", flagged
    assert flagged[0]["after"] > flagged[0]["before"]
    assert "archive failures on db2: failed_count" in after.stdout
    page = (root / after.doc["run"]["id"] / "report.html").read_text()
    assert 'id="drift-archive"' in page and "failed attempt" in page


# The pre-change gate as the README documents it ("Waivers, drift, the pre-change gate and
# retention"): --fail-on low, with --waivers, --baseline and --verify-ca as each case needs.
def gate(tmp_path: Path, *extra: str, root: Path | None = None) -> Audit:
    return audit(tmp_path, "--fail-on", "low", *extra, root=root)


@dataclass
class Approver:
    ca: Path
    key: Path
    cert: Path
    issuer: pki.Issued | None = None  # the approvers' CA, to issue another approver


@pytest.fixture
def approver(tmp_path: Path) -> Approver:
    """A Jones's signing certificate under the approvers' CA (not the reports' CA)."""
    directory = tmp_path / "approvers"
    directory.mkdir()
    ca = pki.make_ca(directory, "walguard test approvers CA")
    jones = pki.issue(directory, ca, "A Jones")
    return Approver(ca.cert_path, jones.key_path, jones.cert_path, ca)


def approve(lab: Lab, waivers: Path, who: Approver) -> list[str]:
    """The approver signs the file; the gate's options that check it."""
    lab.walguard("waivers", "approve", str(waivers), "--sign-key", str(who.key),
                 "--sign-cert", str(who.cert))  # fmt: skip
    return ["--waivers", str(waivers), "--approver-ca", str(who.ca)]


def test_waivers_in_the_gate_including_expiry(lab: Lab, tmp_path: Path, approver: Approver) -> None:
    failing = gate(tmp_path)
    assert failing.exit_status == 1  # the lab's known low finding, WG-ARC-004, on every host

    waivers = tmp_path / "waivers.yml"
    waivers.write_text(WAIVER.format(expires="2099-12-31"))
    waived = gate(tmp_path, *approve(lab, waivers, approver))
    assert waived.exit_status == 0, waived.stdout
    assert waived.doc["waivers"]["approval"]["approver"] == "A Jones"
    for host in ("db1", "db2", "db3"):
        assert results_of(waived, host, "WAIVED") == {"WG-ARC-004"}
        record = next(c for c in waived.doc["hosts"][host]["controls"]
                      if c["control"] == "WG-ARC-004")  # fmt: skip
        assert record["waiver"]["ticket"] == "RISK-1042" and record["message"]
    junit = next(tmp_path.glob(f"reports-*/{waived.doc['run']['id']}/junit.xml"))
    assert any("WAIVED (RISK-1042" in (s.get("message") or "")
               for s in ET.parse(junit).iter("skipped"))  # fmt: skip

    waivers.write_text(WAIVER.format(expires="2026-01-31"))
    expired = gate(tmp_path, *approve(lab, waivers, approver))
    assert expired.exit_status == 1
    assert results_of(expired, "db1", "FAIL") == {"WG-ARC-004"}
    entry = expired.doc["waivers"]["entries"][0]
    assert entry["status"] == "expired" and "db1:WG-ARC-004" in entry["no_longer_waived"]
    assert "EXPIRED WAIVER line 2" in expired.stdout
    pages = {run.doc["run"]["id"]: run for run in (waived, expired)}
    for run_id, run in pages.items():
        page = next(tmp_path.glob(f"reports-*/{run_id}/report.html"))
        seen = " ".join(browser.main_view_text(browser.dump_dom(page)).split())
        if run is waived:
            assert "Accepted risk, waived until 2099-12-31 (RISK-1042" in seen
        else:
            assert "EXPIRED 2026-01-31: waives nothing" in seen


def _signed_by(waivers: Path, who: Approver) -> None:
    """A detached CMS signature made with plain openssl: an approval the approve command would
    not have made (it refuses such files), to see the audit refuse them on its own."""
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-outform", "DER", "-in", str(waivers),
         "-signer", str(who.cert), "-inkey", str(who.key), "-out", f"{waivers}.p7s"],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("unapproved", ": not approved: there is no waivers.yml.p7s beside it"),
        ("changed-after-approval", "waivers.yml.p7s"),
        ("approver-is-author", "who signed the file"),
        ("unknown-control", ":2: key 'control': no control WG-ARC-404"),
        ("bad-date", ":6: key 'expires'"),
    ],
)
def test_a_bad_waiver_is_a_usage_error_before_any_host_is_touched(
    lab: Lab, tmp_path: Path, approver: Approver, case: str, said: str
) -> None:
    waivers = tmp_path / "waivers.yml"
    text = WAIVER.format(expires="someday" if case == "bad-date" else "2099-12-31")
    waivers.write_text(text.replace("ARC-004", "ARC-404") if case == "unknown-control" else text)
    if case == "approver-is-author":
        assert approver.issuer is not None
        smith = pki.issue(tmp_path / "approvers", approver.issuer, "J Smith")
        _signed_by(waivers, Approver(approver.ca, smith.key_path, smith.cert_path))
    elif case != "unapproved":
        _signed_by(waivers, approver)
    if case == "changed-after-approval":
        waivers.write_text(text.replace("2099-12-31", "2099-12-30"))
    root = tmp_path / "reports"
    done = gate(tmp_path, "--waivers", str(waivers), "--approver-ca", str(approver.ca), root=root)
    assert done.exit_status == 4, done.stdout + done.stderr
    assert f"{waivers}" in done.stderr and said in done.stderr, done.stderr
    assert not root.exists()  # no run directory: nothing was audited


def test_the_baseline_gate_fails_only_on_regressions(
    lab: Lab, db3: Any, tmp_path: Path, signing: list[str]
) -> None:
    root = tmp_path / "baseline"
    base = gate(tmp_path, *signing, root=root)
    assert base.exit_status == 1  # the estate is not clean: WG-ARC-004 everywhere
    base_dir = str(root / base.doc["run"]["id"])

    clean = gate(tmp_path, *signing, "--baseline", base_dir)
    assert clean.exit_status == 0, clean.stdout
    assert clean.doc["baseline"]["verified"] and clean.doc["baseline"]["worse"] == []

    lab.walguard("lab", "scenario", "apply", db3.name, "archive-timeout-off")
    regressed = gate(tmp_path, *signing, "--baseline", base_dir)
    assert regressed.exit_status == 1
    assert [(w["host"], w["control"]) for w in regressed.doc["baseline"]["worse"]] == [
        ("db3", "WG-ARC-005")
    ]
    assert "worse: db3 WG-ARC-005 (PASS -> FAIL)" in regressed.stdout

    # A baseline that does not verify is refused, never trusted.
    edited = Path(base_dir) / "results.json"
    edited.write_text(edited.read_text().replace('"PASS"', '"FAIL"'))
    refused = gate(tmp_path, *signing, "--baseline", base_dir)
    assert refused.exit_status == 4 and "does not verify" in refused.stderr
