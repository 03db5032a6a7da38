"""`walguard merge`: shards of one audit become the run one controller would have written (same
hosts, verdicts and gate), signed shards are verified first and listed in the signed manifest,
and shards that cannot be one audit are refused with the reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import pki
from walguard.audit.run import AuditRun
from walguard.audit.runinfo import RunInfo
from walguard.controls import Control
from walguard.inventory.load import Target
from walguard.merge import merged_run as merge
from walguard.merge import shards as merge_shards
from walguard.merge import untrusted_copy
from walguard.report import results_json, synthetic, writer
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
    out, doc, unsigned = merge.merge([a, b], tmp_path / "merged", no_verify=True)
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
    assert f"Shard 2 of 2</td><td>{b.name}: 2 hosts" in page


def test_shards_that_overlap_are_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 4))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    with pytest.raises(merge.MergeError, match=f"host db0003 is in both {a} and {b}"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists()


def test_shards_of_different_audits_are_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    gate = write_run(tmp_path / "b", range(3, HOSTS), fail_on="high")
    differ = r"gate \(--fail-on\) differ: .* has medium, .* has high"
    with pytest.raises(merge.MergeError, match=differ):
        merge.merge([a, gate], tmp_path / "merged", no_verify=True)
    fewer = write_run(tmp_path / "c", range(3, HOSTS), metas=synthetic.controls(12)[:5])
    with pytest.raises(merge.MergeError, match="selected controls differ"):
        merge.merge([a, fewer], tmp_path / "merged", no_verify=True)
    with pytest.raises(merge.MergeError, match="named twice"):
        merge.merge([a, a], tmp_path / "merged", no_verify=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(merge.MergeError, match="not a walguard run directory"):
        merge.merge([a, tmp_path / "empty"], tmp_path / "merged", no_verify=True)
    with pytest.raises(merge.MergeError, match="inside one another"):
        merge.merge([a, gate], a / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists() and not (a / "merged").exists()


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
        (a.name, True),
        (b.name, True),
    ]
    assert listed.metadata["hosts_audited"] == sorted(doc["hosts"])
    assert listed.metadata["shards_verified"] is doc["run"]["merged"]["shards_verified"] is True
    page = (out / "report.html").read_text()
    assert page.count("walguard tests, signature verified before merging") == 2
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


def walguard_merge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "walguard.cli", "merge", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_the_merge_command_exits_with_the_merged_gate(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    done = walguard_merge(str(a), str(b), "--no-verify", "--out", str(tmp_path / "merged"))
    doc = results_json.read(tmp_path / "merged")
    assert done.returncode == doc["gate"] == 1, done.stderr
    assert f"gate (--fail-on medium): exit status {doc['gate']}" in done.stdout
    refused = walguard_merge(str(a), str(a), "--no-verify")
    assert refused.returncode == merge.EXIT_USAGE
    assert "named twice" in refused.stderr
    shutil.rmtree(tmp_path / "merged")
    busy = tmp_path / "merged"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert walguard_merge(str(a), str(b), "--no-verify", "--out", str(busy)).returncode == 4
    assert sorted(p.name for p in busy.iterdir()) == ["x"]


def edit_doc(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = results_json.read(run_dir)
    change(doc)
    results_json.write(doc, run_dir)


@pytest.mark.parametrize("target", ["file", "directory"])
def test_a_link_in_a_verified_shard_is_refused_and_nothing_is_written(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued], target: str
) -> None:
    """A link to a file of the controller, or to a directory, added to a signed shard: merge
    refuses it before anything is verified or written (it would have put the controller's key
    into the merged, signed run), and walguard verify names it too."""
    ca, issued = keys
    secrets_dir = tmp_path / "controller"
    secrets_dir.mkdir()
    (secrets_dir / "merger.key").write_text("-----BEGIN PRIVATE KEY----- controller's own\n")
    a = write_run(tmp_path / "a", range(0, 3), key=key_of(issued))
    b = write_run(tmp_path / "b", range(3, HOSTS), key=key_of(issued))
    link = b / "evidence" / "db0004" / "extra"
    link.symlink_to(secrets_dir / "merger.key" if target == "file" else secrets_dir)
    assert verify.verify(b, ca.cert_path).code == verify.EXIT_ADDED
    out = tmp_path / "merged"
    refused = f"{b}: refused: evidence/db0004/extra is a symbolic link"
    with pytest.raises(merge.MergeError, match=refused) as caught:
        merge.merge([a, b], out, ca=ca.cert_path, signer=key_of(issued))
    assert caught.value.code == merge.EXIT_USAGE
    assert not out.exists()
    done = walguard_merge(str(a), str(b), "--ca", str(ca.cert_path), "--out", str(out))
    assert done.returncode == merge.EXIT_USAGE
    assert done.stderr.count("\n") == 1 and refused in done.stderr, done.stderr
    assert not out.exists()


def test_a_fifo_in_a_shard_is_refused_not_waited_on(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    os.mkfifo(b / "evidence" / "db0004" / "pipe")
    with pytest.raises(merge.MergeError, match=f"{b}: refused: evidence/db0004/pipe is a FIFO"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists()


def test_a_run_id_that_climbs_out_of_out_is_refused(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    """A signed shard's files are kept in shards/RUN-ID/: `../../x` would have put them beside
    --out."""
    _, issued = keys
    a = write_run(tmp_path / "a", range(0, 3), key=key_of(issued))
    b = write_run(tmp_path / "b", range(3, HOSTS), key=key_of(issued))
    edit_doc(b, lambda doc: doc["run"].update(id="../../x"))
    out = tmp_path / "merged"
    with pytest.raises(merge.MergeError, match=r"run\.id '\.\./\.\./x' is not a run name"):
        merge.merge([a, b], out, no_verify=True)
    assert not (tmp_path / "x").exists() and not out.exists()


def test_a_host_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))

    def rename(doc: dict[str, Any]) -> None:
        host = doc["hosts"].pop("db0004")
        for record in host["controls"]:
            record["host"] = "../../etc"
        doc["hosts"]["../../etc"] = host

    edit_doc(b, rename)
    with pytest.raises(merge.MergeError, match=re.escape("host name '../../etc' is refused")):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists()


def test_a_results_json_not_as_walguard_writes_it_is_refused_in_one_line(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    edit_doc(b, lambda doc: doc["run"].pop("operator"))
    with pytest.raises(merge.MergeError) as caught:
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert str(caught.value) == (f"{b}/results.json: $.run: 'operator' is a required property")


def test_evidence_with_no_place_in_the_merged_run_is_refused(tmp_path: Path) -> None:
    """Evidence a shard holds for a host another shard audited, or a loose file: it would be
    mixed into another shard's evidence or left behind, so the merge stops instead."""
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    (b / "evidence" / "db0001").mkdir()
    (b / "evidence" / "db0001" / "collector.txt").write_text("not what db0001 said\n")
    with pytest.raises(merge.MergeError, match="evidence of a host that another shard audited"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    shutil.rmtree(b / "evidence" / "db0001")
    (b / "evidence" / "loose.txt").write_text("x\n")
    with pytest.raises(merge.MergeError, match="a file where walguard writes a directory"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists()


def test_unverified_shards_need_no_verify_and_the_merged_run_says_so(
    tmp_path: Path, keys: tuple[pki.Issued, pki.Issued]
) -> None:
    _, issued = keys
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    out = tmp_path / "merged"
    with pytest.raises(merge.MergeError, match=re.escape(merge_shards.NEED_CA)) as caught:
        merge.merge([a, b], out)
    assert caught.value.code == merge.EXIT_USAGE
    refused = walguard_merge(str(a), str(b), "--out", str(out))
    assert refused.returncode == merge.EXIT_USAGE
    assert refused.stderr == f"walguard: {merge_shards.NEED_CA}\n"
    assert not out.exists()

    done = walguard_merge(str(a), str(b), "--no-verify", "--out", str(out))
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("NOT verified (--no-verify)") == 2
    assert "no shard's signature was checked" in done.stderr
    doc = results_json.read(out)
    SCHEMA.validate(doc)
    assert doc["run"]["merged"]["shards_verified"] is False
    assert "--no-verify" in doc["run"]["merged"]["why"]
    assert [s["verified"] for s in doc["run"]["shards"]] == [None, None]
    page = (out / "report.html").read_text()
    assert 'id="shards-unverified">Merged from shards that were not verified' in page
    assert page.count("<b>not verified</b>") == 2

    signed = tmp_path / "signed"
    merge.merge([a, b], signed, no_verify=True, signer=key_of(issued))
    listed = manifest.parse((signed / manifest.MANIFEST).read_bytes())
    assert listed.metadata["shards_verified"] is False
    assert "--no-verify" in listed.metadata["shards_verification"]


def test_a_file_swapped_for_a_link_while_being_copied_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race between looking at an entry and opening it: the file is a file when looked at
    and a link to a key of the controller when opened; O_NOFOLLOW refuses to follow it."""
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    key = tmp_path / "merger.key"
    key.write_text("the controller's key\n")
    target = b / "evidence" / "db0004" / "collector.txt"
    looked = os.stat

    def look_then_swap(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        seen = looked(path, *args, **kwargs)
        if path == target.name and not target.is_symlink() and seen.st_ino == looked(target).st_ino:
            target.unlink()
            target.symlink_to(key)
        return seen

    monkeypatch.setattr(untrusted_copy.os, "stat", look_then_swap)
    changed = f"{b}: refused: evidence/db0004/collector.txt changed while being copied"
    with pytest.raises(merge.MergeError, match=changed):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert target.is_symlink()  # the swap did happen
    assert not (tmp_path / "merged").exists()


def test_names_that_are_not_utf8_and_trees_too_deep_are_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", range(0, 3))
    b = write_run(tmp_path / "b", range(3, HOSTS))
    odd = os.fsencode(b / "evidence" / "db0004") + b"/\xff.txt"
    os.close(os.open(odd, os.O_WRONLY | os.O_CREAT, 0o644))
    with pytest.raises(merge.MergeError, match="a name that is not UTF-8"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    os.unlink(odd)
    deep = b / "evidence" / "db0004" / "/".join(["d"] * (untrusted_copy.MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    with pytest.raises(merge.MergeError, match="directories deep"):
        merge.merge([a, b], tmp_path / "merged", no_verify=True)
    assert not (tmp_path / "merged").exists()
