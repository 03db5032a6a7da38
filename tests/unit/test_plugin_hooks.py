"""The hooks a bank's own plugin may implement (walguard.hookspecs): its evidence files and its
report sections. A real audit of a host on this machine that nobody answers for (no lab needed),
with a plugin given by `-p`: its section is in results.json and, escaped, in report.html; its
evidence file is beside walguard's own; names that would leave the evidence directory are
refused. Then the evidence writer alone, against hostile names, and the host info of a run
recorded once per version of a host's facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import browser, unanswered
from walguard.audit.items import FactsCache
from walguard.facts.host import HostFacts
from walguard.inventory.load import Target
from walguard.report import evidence_files, html, results_json, synthetic, writer
from walguard.report.evidence_files import REFUSED, EvidenceFiles

REPO = Path(__file__).resolve().parents[2]

BANK_PLUGIN = """
def pytest_walguard_host_evidence(host, facts):
    return [
        ("cmdb.txt", f"{host}: owner team-dba, reachable={facts.reachable}\\n"),
        ("../escaped.txt", "outside"),
        ("/tmp/absolute.txt", "outside"),
        ("nul\\x00.txt", "nul"),
    ]

def pytest_walguard_report_sections(run):
    hosts = ", ".join(run["hosts"])
    return [("Change window <b>CHG-42</b>", f"approved for {hosts}\\n<script>alert(1)</script>")]
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """One real run with the bank's plugin; its run directory, results.json and output."""
    tmp = tmp_path_factory.mktemp("bank")
    (tmp / "bank_plugin.py").write_text(BANK_PLUGIN)
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text("")
    inv = tmp / "inventory.yml"
    inv.write_text(
        "all:\n  vars:\n    ansible_host: 127.0.0.1\n    walguard_ssh_retries: 0\n"
        f"    walguard_known_hosts_file: {known_hosts}\n"
        f"  hosts:\n    db1:\n      ansible_port: {unanswered.closed_port()}\n"
    )
    root = tmp / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(root), "-k", "WG-ARC-001 or WG-DIR-004", "-p", "bank_plugin"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 6, output  # unreachable: ERROR, as without the plugin
    (run_dir,) = root.iterdir()
    return run_dir, results_json.read(run_dir), output


def test_a_banks_section_is_in_results_json_and_shown_escaped(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    run_dir, doc, _ = audited
    assert doc["sections"] == [{
        "title": "Change window <b>CHG-42</b>",
        "text": "approved for db1\n<script>alert(1)</script>",
    }]  # fmt: skip
    page = (run_dir / "report.html").read_text()
    assert "<script" not in page and "<b>CHG-42</b>" not in page
    assert "Change window &lt;b&gt;CHG-42&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = browser.main_view_text(browser.dump_dom(run_dir / "report.html"))
    assert "Change window <b>CHG-42</b>" in text and "approved for db1" in text
    # Said to be the installation's, not walguard's.
    assert "pytest_walguard_report_sections" in text


def test_a_banks_evidence_is_beside_walguards_and_bad_names_are_refused(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    run_dir, doc, _ = audited
    host = run_dir / "evidence" / "db1"
    assert (host / "extra" / "cmdb.txt").read_text() == "db1: owner team-dba, reachable=False\n"
    assert (host / "error.txt").is_file()  # walguard's own, untouched
    assert sorted(p.name for p in (host / "extra").iterdir()) == ["cmdb.txt"]
    assert not (host / "escaped.txt").exists() and not (run_dir / "evidence/escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()
    refused = (host / REFUSED).read_text()
    assert "'../escaped.txt'" in refused and "'/tmp/absolute.txt'" in refused
    assert "'nul\\x00.txt'" in refused
    assert "evidence/db1/extra/cmdb.txt" in doc["hosts"]["db1"]["evidence"]


@pytest.mark.parametrize(
    "name",
    ["../x", "../../x", "/etc/passwd", "a/b", "a\\b", "nul\x00name", "..", ".", ".hidden", "",
     "x" * 101, "line\nbreak", 7, None, b"bytes.txt"],
)  # fmt: skip
def test_no_hook_name_leaves_the_extra_directory(tmp_path: Path, name: object) -> None:
    run_dir = tmp_path / "run"
    writer_ = EvidenceFiles(run_dir, lambda host, facts: [[(name, "hostile")]])
    writer_.host(HostFacts.unreachable("db1", "192.0.2.1", "unreachable"))
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["run/evidence/db1/error.txt", f"run/evidence/db1/{REFUSED}"]
    assert "refused" in (run_dir / "evidence/db1" / REFUSED).read_text()


def test_a_name_given_twice_or_a_failing_hook_is_written_down(tmp_path: Path) -> None:
    facts = HostFacts.unreachable("db1", "192.0.2.1", "unreachable")
    twice = EvidenceFiles(tmp_path / "a", lambda host, facts: [[("x.txt", "1")], [("x.txt", "2")]])
    twice.host(facts)
    host = tmp_path / "a/evidence/db1"
    assert (host / "extra/x.txt").read_text() == "1"
    assert "'x.txt' was given twice" in (host / REFUSED).read_text()

    def broken(host: str, facts: HostFacts) -> list[Any]:
        raise RuntimeError("the CMDB is down")

    EvidenceFiles(tmp_path / "b", broken).host(facts)
    said = (tmp_path / "b/evidence/db1" / REFUSED).read_text()
    assert "pytest_walguard_host_evidence failed: RuntimeError" in said and "CMDB is down" in said


def test_sections_from_the_writer_render_after_the_summary(tmp_path: Path) -> None:
    """The synthetic run through the real writer, with a section and a malformed answer."""
    run_dir = synthetic.new_run_dir(tmp_path)
    run, _, info = synthetic.make_run(run_dir, 3, 5)
    answers = [[("Ticket", "CHG-7 & <i>friends</i>")], [("only a title",)]]
    assert writer.write_run(run, run.complete("x"), info, code=0, gate=0, signing=None,
                            sections=lambda doc: answers) is None  # fmt: skip
    doc = results_json.read(run_dir)
    assert [s["title"] for s in doc["sections"]] == ["Ticket", "Refused report section"]
    page = html.render(doc)
    assert "CHG-7 &amp; &lt;i&gt;friends&lt;/i&gt;" in page
    assert page.index('id="per-host"') < page.index('id="section-1"') < page.index('id="matrix"')
    without = json.loads(json.dumps(doc))
    del without["sections"]
    assert 'id="section-1"' not in html.render(without)


def test_host_info_is_built_once_per_version_of_a_hosts_facts() -> None:
    cache = FactsCache(None, active_probe=False, probe_wait_s=1)
    target = Target("db1", "192.0.2.1", 22, "walguard", None, True, ("db",), {})
    first = HostFacts.unreachable("db1", "192.0.2.1", "unreachable")
    info = cache.host_info(target, first)
    assert info is not None and info["address"] == "192.0.2.1" and info["reachable"] is False
    assert cache.host_info(target, first) is None  # the next control on the same facts
    assert cache.host_info(target, None) is None  # an item that never reached the facts
    again = HostFacts.unreachable("db1", "192.0.2.1", "unreachable")  # e.g. zones added
    assert cache.host_info(target, again) == info
    cache.release()
    assert cache.host_info(target, again) == info


def test_the_evidence_writer_is_the_report_packages() -> None:
    """walguard.audit hands facts to a writer it is given; it imports nothing of the report."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, walguard.audit.session, walguard.audit.prefetch; "
         "print(sorted(m for m in sys.modules if m.startswith('walguard.report')))"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"
    assert evidence_files.EvidenceFiles.__module__ == "walguard.report.evidence_files"
