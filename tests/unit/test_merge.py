"""`walguard merge`: shards of one audit become the run one controller would have written (same
hosts, verdicts and gate), signed shards are verified first and listed in the signed manifest,
and shards that cannot be one audit are refused with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import pki
from walguard import merge
from walguard.controls import Control
from walguard.inventory import Target
from walguard.report import results_json, synthetic, writer
from walguard.report.runinfo import RunInfo
from walguard.run import AuditRun
from walguard.signing import manifest, signer, verify

REPO = Path(__file__).resolve().parents[2]
SCHEMA = jsonschema.Draft202012Validator(json.loads(results_json.SCHEMA_PATH.read_text()))
HOSTS = 6


def write_run(
    root: Path,
    indices: range,
    *,
    metas: list[Control] | None = None,
    fail_on: str = "medium",
    key: signer.Signer | None = None,
) -> Path:
    """A run of these synthetic hosts through the real writers, with a junit.xml as pytest
    writes one (a suite, a test case per control and host)."""
    run_dir = synthetic.new_run_dir(root)
    metas = metas or synthetic.controls(12)
    targets = [Target(f"db{i:04d}", f"10.0.0.{i}", 22, "walguard", None, True, ("db",), {})
               for i in indices]  # fmt: skip
    run = AuditRun(targets, run_dir, fail_on)
    run.expect({(t.name, m.id): m for t in targets for m in metas}, len(targets) * len(metas))
    suite = ET.Element("testsuite", {"name": "pytest", "tests": str(len(targets) * len(metas))})
    for index, target in zip(indices, targets, strict=True):
        evidence = run_dir / "evidence" / target.name
        evidence.mkdir(parents=True)
        (evidence / "collector.txt").write_text(synthetic.collector_text(target.name))
        info = {"address": target.address, "reachable": True, "round_trips": 2, "error": None}
        for meta in metas:
            res = synthetic.result_for(target.name, index, meta)
            run.record(res, info)
            ET.SubElement(suite, "testcase", {"classname": "checks", "name": res.nodeid})
    root_el = ET.Element("testsuites", {"name": "pytest tests"})
    root_el.append(suite)
    ET.ElementTree(root_el).write(run_dir / "junit.xml", encoding="utf-8", xml_declaration=True)
    (run_dir / "evidence" / "probe-a").mkdir()
    (run_dir / "evidence" / "probe-a" / "zone_probe.txt").write_text(f"probe of {run_dir.name}\n")
    run_info = RunInfo.start(run_dir.name, targets=targets, inventory_source="synthetic",
                             listing=None, pytest_args=["checks"], fail_on=fail_on)  # fmt: skip
    gate = run.gate("x")
    signing = writer.Signing(key, None) if key is not None else None
    assert writer.write_run(run, run.complete("x"), run_info, code=gate, gate=gate,
                            signing=signing) is None  # fmt: skip
    return run_dir


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.Issued, pki.Issued]:
    directory = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(directory)
    return ca, pki.issue(directory, ca, "walguard shard signer")


def key_of(issued: pki.Issued) -> signer.Signer:
    return signer.Signer(issued.key, issued.cert)


def judged(doc: dict[str, Any]) -> dict[str, Any]:
    """What must be the same whether one controller or several audited the hosts."""
    return {"hosts": doc["hosts"], "summary": doc["summary"], "gate": doc["gate"],
            "exit_status": doc["exit_status"], "selected": doc["selected"], "total": doc["total"],
            "missing": doc["missing"], "controls": doc["controls"],
            "policy_sha256": doc["run"]["policy_sha256"]}  # fmt: skip


def test_two_shards_make_the_run_one_controller_would(tmp_path: Path) -> None:
    single = write_run(tmp_path / "single", range(HOSTS))
    a = write_run(tmp_path / "a", range(0, 4))
    b = write_run(tmp_path / "b", range(4, HOSTS))
    out, doc, unsigned = merge.merge([a, b], tmp_path / "merged")
    assert unsigned is None
    SCHEMA.validate(doc)
    assert doc == results_json.read(out)
    assert judged(doc) == judged(results_json.read(single))
    assert [s["id"] for s in doc["run"]["shards"]] == [a.name, b.name]
    # Evidence at the same paths; the probe host's of each shard under that shard's run id.
    for host in doc["hosts"]:
        assert (out / "evidence" / host / "collector.txt").read_bytes() == (
            (a if int(host[2:]) < 4 else b) / "evidence" / host / "collector.txt"
        ).read_bytes()
    assert sorted(p.name for p in (out / "evidence" / "probe-a").iterdir()) == sorted(
        [a.name, b.name]
    )
    # junit.xml: both suites, every test case once.
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [f"pytest ({a.name})", f"pytest ({b.name})"]
    cases = [c.get("name") for s in suites for c in s.findall("testcase")]
    assert len(cases) == len(set(cases)) == doc["selected"]
    page = (out / "report.html").read_text()
    assert "db0000" in page and "db0005" in page


def test_shards_that_overlap_are_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 4))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    with pytest.raises(merge.MergeError, match=f"host db0003 is in both {a} and {b}"):
        merge.merge([a, b], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_shards_of_different_audits_are_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    gate = write_run(tmp_path / "b", range(3, HOSTS), fail_on="high")
    differ = r"gate \(--fail-on\) differ: .* has medium, .* has high"
    with pytest.raises(merge.MergeError, match=differ):
        merge.merge([a, gate], tmp_path / "merged")
    fewer = write_run(tmp_path / "c", range(3, HOSTS), metas=synthetic.controls(12)[:5])
    with pytest.raises(merge.MergeError, match="selected controls differ"):
        merge.merge([a, fewer], tmp_path / "merged")
    with pytest.raises(merge.MergeError, match="named twice"):
        merge.merge([a, a], tmp_path / "merged")
    with pytest.raises(merge.MergeError, match="not a walguard run directory"):
        merge.merge([a, tmp_path], tmp_path / "merged")


def test_signed_shards_are_verified_then_listed_in_the_signed_manifest(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, issued = keys
    a = write_run(tmp_path / "a", range(0, 3), key=key_of(issued))
    b = write_run(tmp_path / "b", range(3, HOSTS), key=key_of(issued))
    out, doc, unsigned = merge.merge([a, b], tmp_path / "merged", ca=ca.cert_path,
                                     signer=key_of(issued))  # fmt: skip
    assert unsigned is None
    assert verify.verify(out, ca.cert_path).code == verify.EXIT_OK
    listed = manifest.parse((out / manifest.MANIFEST).read_bytes())
    assert [(s["id"], s["verified"]) for s in listed.metadata["shards"]] == [
        (a.name, True), (b.name, True)
    ]
    assert listed.metadata["hosts_audited"] == sorted(doc["hosts"])
    for shard in (a, b):
        kept = out / merge.SHARDS_DIR / shard.name
        assert (kept / manifest.SIGNATURE).read_bytes() == (shard / manifest.SIGNATURE).read_bytes()
        assert f"{merge.SHARDS_DIR}/{shard.name}/{manifest.SIGNATURE}" in listed.files
        # The shard's own manifest vouches for its evidence at the merged run's paths.
        own = manifest.parse((kept / manifest.MANIFEST).read_bytes())
        evidence = {p: h for p, h in own.files.items() if p.startswith("evidence/db")}
        assert evidence and all(manifest.sha256_file(out / p) == h for p, h in evidence.items())


def test_a_shard_that_does_not_verify_is_refused(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    ca, issued = keys
    a = write_run(tmp_path / "a", range(0, 3), key=key_of(issued))
    b = write_run(tmp_path / "b", range(3, HOSTS), key=key_of(issued))
    with (b / "evidence" / "db0004" / "collector.txt").open("a") as f:
        f.write("edited after signing\n")
    changed = r"changed: evidence/db0004/collector\.txt"
    with pytest.raises(merge.MergeError, match=changed) as caught:
        merge.merge([a, b], tmp_path / "merged", ca=ca.cert_path)
    assert caught.value.code == verify.EXIT_CHANGED
    unsigned = write_run(tmp_path / "c", range(3, HOSTS))
    with pytest.raises(merge.MergeError, match="not a signed run") as caught:
        merge.merge([a, unsigned], tmp_path / "merged", ca=ca.cert_path)
    assert caught.value.code == verify.EXIT_UNSIGNED
    assert not (tmp_path / "merged").exists()


def test_the_merge_command_exits_with_the_merged_gate(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))

    def walguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "walguard.cli", "merge", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    done = walguard(str(a), str(b), "--out", str(tmp_path / "merged"))
    doc = results_json.read(tmp_path / "merged")
    assert done.returncode == doc["gate"] == 1, done.stderr
    assert f"gate (--fail-on medium): exit status {doc['gate']}" in done.stdout
    refused = walguard(str(a), str(a))
    assert refused.returncode == merge.EXIT_USAGE
    assert "named twice" in refused.stderr
    shutil.rmtree(tmp_path / "merged")
    busy = tmp_path / "merged"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert walguard(str(a), str(b), "--out", str(busy)).returncode == merge.EXIT_USAGE
