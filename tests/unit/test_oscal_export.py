"""`walguard export oscal`: a run as OSCAL Assessment Results, valid against NIST's published
schema (tests/data/oscal/, its ECMA-262 patterns translated: tests/oscal_schema.py), with every
evidence file's SHA-256, the signed manifest in the back-matter, and a hostile run directory
refused in one line."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import oscal_schema, pki, signed_runs
from walguard.cli import main
from walguard.exit_codes import Exit
from walguard.export import oscal
from walguard.report import results_json, synthetic, writer
from walguard.results import ERROR, NOT_APPLICABLE, PASS, REMEDIATED

WAIVER = {
    "control": "WG-ARC-002", "hosts": ["db0003"], "reason": "replica <b>pending</b> [ticket]",
    "author": "dba", "approver": "ciso", "expires": "2031-01-31", "ticket": "RISK-7", "line": 1,
    "status": "active",
}  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned synthetic run with one result of every kind the mapping tells apart."""
    run_dir = synthetic.new_run_dir(tmp_path_factory.mktemp("runs"))
    run, results, info = synthetic.make_run(run_dir, 6, 25)
    for host, control, changes in (
        ("db0001", "WG-ARC-001", {"result": ERROR, "message": "facts unavailable: timeout"}),
        ("db0002", "WG-ARC-001", {"result": NOT_APPLICABLE, "message": "not required here"}),
        ("db0003", "WG-ARC-002", {"result": "WAIVED", "waiver": WAIVER,
                                  "message": "wal_level is minimal [x](javascript:alert(1))"}),
    ):  # fmt: skip
        results = synthetic.with_result(results, host, control, **changes)
    assert writer.write_run(run, results, info, code=1, gate=1, signing=None) is None
    return run_dir


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.Issued, pki.Issued, pki.Issued]:
    """The bank's CA, a signer it certified, and another CA."""
    d = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(d)
    return ca, pki.issue(d, ca, "walguard run signer"), pki.make_ca(d, "another CA")


def a_copy(template: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / template.name
    shutil.copytree(template, run_dir)
    return run_dir


def export(*argv: str) -> int:
    return main(["export", "oscal", *argv])


def exported(
    run_dir: Path, out: Path, *extra: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The document, its one result, and its back-matter resources by href."""
    assert export(str(run_dir), "-o", str(out), *extra) == 0
    doc = json.loads(out.read_text())
    ar = doc["assessment-results"]
    resources = {r["rlinks"][0]["href"]: r for r in ar["back-matter"]["resources"] if "rlinks" in r}
    return doc, ar["results"][0], resources


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prop(item: dict[str, Any], name: str) -> str | None:
    values = [p["value"] for p in item.get("props", []) if p["name"] == name]
    return values[0] if values else None


# --- The document ------------------------------------------------------------------------------


def test_a_run_exports_as_valid_oscal_assessment_results(template: Path, tmp_path: Path) -> None:
    doc, result, _ = exported(template, tmp_path / "ar.json")
    assert oscal_schema.errors(doc) == []
    ar = doc["assessment-results"]
    run = results_json.read(template)
    assert ar["metadata"]["oscal-version"] == oscal.OSCAL_VERSION
    assert ar["metadata"]["last-modified"] == run["run"]["finished"] == result["end"]
    assert result["start"] == run["run"]["started"]
    (selection,) = result["reviewed-controls"]["control-selections"]
    assert [c["control-id"] for c in selection["include-controls"]] == [
        c.lower() for c in sorted(run["controls"])
    ]
    plan = ar["import-ap"]["href"].removeprefix("#")
    assert plan in {r["uuid"] for r in ar["back-matter"]["resources"]}
    records = [r for h in run["hosts"].values() for r in h["controls"]]
    assert len(result["observations"]) == len(records) == 6 * 25
    assert len(result["findings"]) == sum(r["result"] != PASS for r in records)
    hosts = {i["uuid"]: prop(i, "host") for i in result["local-definitions"]["inventory-items"]}
    for seen in result["observations"]:
        assert seen["methods"] == ["TEST"]
        assert hosts[seen["subjects"][0]["subject-uuid"]] == prop(seen, "host")


def test_each_result_becomes_an_observation_and_each_one_not_passed_a_finding(
    template: Path, tmp_path: Path
) -> None:
    _, result, _ = exported(template, tmp_path / "ar.json")
    seen = {o["uuid"]: o for o in result["observations"]}
    found = {(prop(f, "host"), prop(f, "control-id")): f for f in result["findings"]}
    for (host, control), state, reason, verdict in (
        (("db0000", "WG-ACT-008"), "not-satisfied", "fail", "FAIL"),
        (("db0001", "WG-ARC-001"), "not-satisfied", "other", ERROR),
        (("db0002", "WG-ARC-001"), "satisfied", "other", NOT_APPLICABLE),
        (("db0003", "WG-ARC-002"), "not-satisfied", "fail", "WAIVED"),
    ):
        finding = found[(host, control)]
        assert finding["target"]["type"] == "objective-id"
        assert finding["target"]["target-id"] == control.lower()
        assert finding["target"]["status"] == {"state": state, "reason": reason}
        assert prop(finding, "result") == verdict
        observation = seen[finding["related-observations"][0]["observation-uuid"]]
        assert (prop(observation, "host"), prop(observation, "control-id")) == (host, control)
    na = found[("db0002", "WG-ARC-001")]["target"]
    assert na["implementation-status"] == {"state": "not-applicable"}
    assert "RISK-7" in found[("db0003", "WG-ARC-002")]["description"]
    remediated = [f for f in result["findings"] if prop(f, "result") == REMEDIATED]
    assert all(f["target"]["status"]["state"] == "satisfied" for f in remediated)


def test_text_from_the_run_cannot_make_links_or_html(template: Path, tmp_path: Path) -> None:
    _, result, _ = exported(template, tmp_path / "ar.json")
    (waived,) = [f for f in result["findings"] if prop(f, "result") == "WAIVED"]
    said = waived["description"]
    assert r"\[x\](javascript:alert(1))" in said and r"\<b\>pending\</b\>" in said
    assert not re.search(r"(?<!\\)[<\[]", said)


def test_every_evidence_file_is_linked_with_its_sha256(template: Path, tmp_path: Path) -> None:
    _, result, resources = exported(template, tmp_path / "ar.json")
    on_disk = sorted(str(p.relative_to(template)) for p in (template / "evidence").rglob("*")
                     if p.is_file())  # fmt: skip
    assert on_disk and all(rel in resources for rel in on_disk)
    for rel in [*on_disk, "results.json", "report.html"]:
        (digest,) = resources[rel]["rlinks"][0]["hashes"]
        assert digest == {"algorithm": "SHA-256", "value": sha256(template / rel)}
    by_uuid = {r["uuid"]: r for r in resources.values()}
    cited = [ev for o in result["observations"] for ev in o.get("relevant-evidence", [])]
    assert cited
    for ev in cited:
        assert ev["href"].startswith("evidence/")
        assert prop(ev, "sha256") == sha256(template / ev["href"])
        linked = by_uuid[ev["links"][0]["href"].removeprefix("#")]
        assert linked["rlinks"][0]["href"] == ev["href"]


def test_the_export_is_the_same_every_time(template: Path, tmp_path: Path) -> None:
    """Two exports of one run, even from a copy elsewhere, are the same bytes (UUIDs are
    version 5 of the run id and the item; the time is the run's)."""
    assert export(str(template), "-o", str(tmp_path / "1.json")) == 0
    assert export(str(a_copy(template, tmp_path)), "-o", str(tmp_path / "2.json")) == 0
    first = (tmp_path / "1.json").read_bytes()
    assert first == (tmp_path / "2.json").read_bytes()
    uuids = re.findall(rb'"uuid": "([0-9a-f-]{36})"', first)
    assert len(uuids) == len(set(uuids)) > 150


def test_without_o_the_document_goes_to_stdout(
    template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(str(template)) == 0
    out, err = capsys.readouterr()
    assert oscal_schema.errors(json.loads(out)) == []
    assert err == "walguard: warning: the run is not signed; the document says so\n"


# --- Signed runs -------------------------------------------------------------------------------


@pytest.fixture
def signed(template: Path, tmp_path: Path, keys: tuple[pki.Issued, ...]) -> Path:
    return signed_runs.signed(template, tmp_path / "signed", signed_runs.signer_of(keys[1]))


def test_a_signed_run_has_its_manifest_and_signature_in_the_back_matter(
    signed: Path, tmp_path: Path
) -> None:
    doc, result, resources = exported(signed, tmp_path / "ar.json")
    assert oscal_schema.errors(doc) == []
    for name in ("manifest", "manifest.p7s"):
        (digest,) = resources[name]["rlinks"][0]["hashes"]
        assert digest == {"algorithm": "SHA-256", "value": sha256(signed / name)}
    # Without --ca nothing was verified, and the document never says it was.
    assert prop(result, "signature") == "not-verified"
    assert prop(resources["manifest.p7s"], "signature") == "not-verified"
    assert "NOT verify" in result["remarks"]
    assert prop(result, "signature-ca-sha256") is None


def test_with_ca_the_signature_is_verified_first_and_the_document_says_so(
    signed: Path, tmp_path: Path, keys: tuple[pki.Issued, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    ca = keys[0].cert_path
    doc, result, _ = exported(signed, tmp_path / "ar.json", "--ca", str(ca))
    assert oscal_schema.errors(doc) == []
    assert prop(result, "signature") == "verified"
    assert prop(result, "signature-ca-sha256") == sha256(ca)
    assert "warning" not in capsys.readouterr().err


def test_a_run_that_does_not_verify_against_ca_is_refused(
    signed: Path, template: Path, tmp_path: Path, keys: tuple[pki.Issued, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "ar.json"
    assert export(str(signed), "-o", str(out), "--ca", str(keys[2].cert_path)) == Exit.UNTRUSTED
    assert export(str(template), "-o", str(out), "--ca", str(keys[0].cert_path)) == Exit.UNSIGNED
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "does not verify against" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ("evidence/db0002/collector.txt", Exit.CHANGED, "changed since signing"),
        ("results.json", Exit.CHANGED, "changed since signing"),
        (None, Exit.ADDED, "not listed in the run's manifest"),
    ],
)
def test_a_file_that_contradicts_the_manifest_is_refused_without_ca(
    signed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    change: str | None, code: int, words: str,
) -> None:  # fmt: skip
    if change is None:  # a cited evidence file that the manifest does not list
        doc = results_json.read(signed)
        doc["hosts"]["db0001"]["evidence"].append("evidence/db0001/planted.txt")
        (signed / "evidence/db0001/planted.txt").write_text("planted\n")
        _rewrite_keeping_manifest(signed, doc)
    else:
        path = signed / change
        data = path.read_text()
        path.write_text(data.replace("db0002", "db0009", 1) if change == "results.json"
                        else data + "planted\n")  # fmt: skip
    out = tmp_path / "ar.json"
    assert export(str(signed), "-o", str(out)) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


def _rewrite_keeping_manifest(run_dir: Path, doc: dict[str, Any]) -> None:
    """results.json changed, and its line in the manifest with it (an unverified manifest is
    anyone's to edit): only the planted evidence file contradicts the manifest."""
    results_json.write(doc, run_dir)
    text = (run_dir / "manifest").read_text()
    text = re.sub(r"^[0-9a-f]{64}(?=  results\.json$)", sha256(run_dir / "results.json"), text,
                  flags=re.M)  # fmt: skip
    (run_dir / "manifest").write_text(text)


# --- Hostile run directories -------------------------------------------------------------------


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        doc = results_json.read(run_dir)
        change(doc)
        results_json.write(doc, run_dir)

    return apply


def _raw(data: bytes) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        (run_dir / "results.json").write_bytes(data)

    return apply


def _symlink_evidence(run_dir: Path) -> None:
    path = run_dir / "evidence/db0001/collector.txt"
    path.unlink()
    path.symlink_to("/etc/passwd")


def _symlink_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "evidence/db0002")
    (run_dir / "evidence/db0002").symlink_to("/etc")


def _fifo(run_dir: Path) -> None:
    os.mkfifo(run_dir / "evidence/db0001/pipe.txt")


def _huge(run_dir: Path) -> None:
    with (run_dir / "evidence/db0001/huge.txt").open("wb") as f:
        f.truncate(300 << 20)  # sparse: nothing is written, the size alone is refused


def _cite(path: str, *, in_result: bool = False) -> Callable[[Path], None]:
    def change(doc: dict[str, Any]) -> None:
        host = doc["hosts"]["db0001"]
        if in_result:
            host["controls"][0]["evidence"][0]["file"] = path
        else:
            host["evidence"].append(path)

    return _edit(change)


def _set(keys: tuple[str, ...], value: Any) -> Callable[[Path], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return _edit(change)


def _duplicate(doc: dict[str, Any]) -> None:
    records = doc["hosts"]["db0001"]["controls"]
    records.append(copy.deepcopy(records[0]))


HOSTILE = [
    ("symlinked evidence", _symlink_evidence, "evidence/db0001/collector.txt is a symbolic link"),
    ("symlinked host dir", _symlink_dir, "evidence/db0002 is a symbolic link"),
    ("fifo", _fifo, "evidence/db0001/pipe.txt is a FIFO"),
    ("huge file", _huge, "evidence/db0001/huge.txt: larger than 256 MiB"),
    ("../ in host evidence", _cite("evidence/../../../etc/passwd"), "is not a file under"),
    ("../ in a result", _cite("../secret.key", in_result=True), "controls[0].evidence[0].file"),
    ("absolute path", _cite("/etc/shadow"), "is not a file under"),
    ("outside evidence/", _cite("manifest.p7s/x"), "is not a file under"),
    ("missing evidence", _cite("evidence/db0001/gone.txt"), "which is not a file of the run"),
    ("not json", _raw(b'{"schema_version": 1, '), "results.json cannot be read"),
    ("not utf-8", _raw(b'{"a": "\xff"}'), "results.json cannot be read"),
    ("nested", _raw(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    ("not a list", _raw(b"[]"), "schema version None"),
    ("schema", _set(("hosts", "db0001", "controls"), "all passed"), "is not of type 'array'"),
    ("run id", _set(("run", "id"), "../../x"), "is not a run name"),
    ("host name", _edit(lambda d: d["hosts"].update({"../etc": d["hosts"]["db0001"]})),
     "host name '../etc' is refused"),
    ("no such day", _set(("run", "finished"), "2031-02-31T00:00:00Z"), "is not a time walguard"),
    ("twice", _edit(_duplicate), "two results for"),
    ("no results.json", lambda d: (d / "results.json").unlink(), "no results.json there"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "words"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_a_hostile_run_directory_is_refused_in_one_line(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    change: Callable[[Path], None], words: str,
) -> None:  # fmt: skip
    run_dir = a_copy(template, tmp_path)
    change(run_dir)
    out = tmp_path / "ar.json"
    assert export(str(run_dir), "-o", str(out)) == Exit.USAGE
    stdout, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("walguard: ") and words in err, err
    assert "Traceback" not in err and not stdout
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "the following arguments are required"),
        (["oscal"], "the following arguments are required: RUN_DIR"),
        (["hdf", "x"], "invalid choice: 'hdf'"),
        (["oscal", "/nonexistent/run"], "is not a directory"),
        (["oscal", "RUN", "--tsa-ca", "CA"], "give --ca too"),
        (["oscal", "RUN", "--ca", "/nonexistent/ca.pem"], "no such file"),
        (["oscal", "RUN", "-o", "RUN/ar.json"], "inside the run directory"),
        (["oscal", "RUN", "-o", "RUN"], "is a directory"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_4(
    template: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    argv = [a.replace("RUN", str(template)) for a in argv]
    assert main(["export", *argv]) == Exit.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not (template / "ar.json").exists()


# --- The schema and its validation -------------------------------------------------------------


def test_the_vendored_schema_is_nists_of_the_version_the_export_declares() -> None:
    assert sha256(oscal_schema.SCHEMA_PATH) == oscal_schema.SCHEMA_SHA256
    schema = oscal_schema.load_schema()
    assert schema["$id"] == oscal_schema.SCHEMA_ID
    assert f"/{oscal.OSCAL_VERSION}/" in schema["$id"]
    readme = (oscal_schema.SCHEMA_PATH.parent / "README.md").read_text()
    assert oscal_schema.SCHEMA_SHA256 in readme


def test_ecma_patterns_are_translated_not_dropped() -> None:
    """OSCAL's token pattern uses \\p{L} and \\p{N}, which Python's re rejects: translated, it
    matches what ECMA-262 matches, and `$` ends the string as in ECMA-262."""
    token = oscal_schema._compiled(r"^(\p{L}|_)(\p{L}|\p{N}|[.\-_])*$")
    for good in ("wg-arc-001", "_x", "été", "Ω2", "a.b_c-d", "x\u0661"):
        assert token.search(good), good
    for bad in ("1abc", "-x", "a b", "a\n", "", "a/b", "\u00b2a"):
        assert not token.search(bad), bad
    string = oscal_schema._compiled(r"^\S(.*\S)?$")
    assert string.search("one line") and not string.search("x\n") and not string.search(" x")
    assert not string.search("a\rb") and not string.search("x\ufeff")
    with pytest.raises(oscal_schema.Untranslatable):
        oscal_schema.python_pattern(r"^\p{Script=Latin}$")
    with pytest.raises(oscal_schema.Untranslatable):
        oscal_schema.python_pattern(r"^\bword$")
    schema = oscal_schema.load_schema()
    assert r"^(\p{L}|_)(\p{L}|\p{N}|[.\-_])*$" in set(oscal_schema.patterns(schema))


BREAKAGES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("no import-ap", lambda ar: ar.pop("import-ap")),
    ("no oscal-version", lambda ar: ar["metadata"].pop("oscal-version")),
    ("a finding's state", lambda ar: ar["results"][0]["findings"][0]["target"]["status"].update(
        state="failed")),
    ("no methods", lambda ar: ar["results"][0]["observations"][0].update(methods=[])),
    ("a control-id token", lambda ar: ar["results"][0]["reviewed-controls"]["control-selections"]
     [0]["include-controls"][0].update({"control-id": "1 wg"})),
    ("a prop value of two lines", lambda ar: ar["metadata"]["props"][0].update(value="a\nb")),
    ("a time without zone", lambda ar: ar["results"][0].update(start="2031-01-01T00:00:00")),
    ("a uuid", lambda ar: ar.update(uuid="not-a-uuid")),
    ("an extra key", lambda ar: ar["results"][0].update(verdict="ok")),
    ("a hash without algorithm", lambda ar: ar["back-matter"]["resources"][1]["rlinks"][0]
     ["hashes"][0].pop("algorithm")),
]  # fmt: skip


@pytest.mark.parametrize("breakage", [b[1] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES])
def test_a_broken_document_fails_the_schema(
    template: Path, tmp_path: Path, breakage: Callable[[dict[str, Any]], None]
) -> None:
    doc, _, _ = exported(template, tmp_path / "ar.json")
    breakage(doc["assessment-results"])
    assert oscal_schema.errors(doc)


def test_a_run_path_the_file_system_refuses_is_one_usage_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A path that cannot even be looked at (too long here; for another user, one it may not
    enter) is the operator's input: one line and exit 4, no traceback."""
    from walguard.cli import main

    assert main(["export", "oscal", "x" * 5000]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "File name too long" in err and "Traceback" not in err
