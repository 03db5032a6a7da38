"""A real lab run, signed by a test CA with a timestamp from a local `openssl ts` TSA: it verifies
with walguard and with plain openssl, each tampering is named, and Chromium shows an auditor its
summary and findings without tracebacks.

The other lab tests break and reset hosts concurrently, so nothing here depends on which
controls pass: the page is checked against this run's own results.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import browser, pki
from tests.lab.support import Lab
from tests.signed_runs import TAMPERING, openssl_verdict, walguard_verify
from walguard.lab import settings
from walguard.report import results_json
from walguard.signing import manifest, signer, verify
from walguard.signing.sign_run import sign_run

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class SignedRun:
    dir: Path
    doc: dict[str, Any]
    ca: pki.Issued
    signer: pki.Issued
    audit: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def signed_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedRun]:
    tmp = tmp_path_factory.mktemp("signed")
    ca = pki.make_ca(tmp)
    key = pki.issue(tmp, ca, "walguard lab signer")
    inventory = settings.INVENTORY_PATH  # as `walguard lab up` (the lab fixture) wrote it
    with pki.local_tsa(tmp / "tsa", ca) as url:
        done = subprocess.run(
            [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inventory),
             "--report-root", str(tmp / "reports"), "--sign-key", str(key.key_path),
             "--sign-cert", str(key.cert_path), "--tsa-url", url],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    assert done.returncode in (0, 1, 6), done.stdout + done.stderr  # the gate's, not a crash
    (run_dir,) = (tmp / "reports").iterdir()
    yield SignedRun(run_dir, results_json.read(run_dir), ca, key, done)


def test_real_run_validates_against_the_schema(signed_run: SignedRun) -> None:
    schema = json.loads(results_json.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(signed_run.doc)
    run = signed_run.doc["run"]
    assert run["signing"]["subject"] == "CN=walguard lab signer,O=walguard tests"
    assert set(signed_run.doc["hosts"]) >= {"db1", "db2", "db3"}
    assert signed_run.doc["exit_status"] == signed_run.audit.returncode


def test_real_run_verifies_with_walguard_and_openssl(signed_run: SignedRun) -> None:
    names = {p.name for p in signed_run.dir.iterdir()}
    assert {"report.html", "results.json", "junit.xml", "evidence", "manifest", "manifest.p7s",
            "manifest.p7s.tsr"} <= names  # fmt: skip
    done = walguard_verify(signed_run.dir, signed_run.ca.cert_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK    timestamp:" in done.stdout
    assert openssl_verdict(signed_run.dir, signed_run.ca.cert_path)
    key = signed_run.signer.key_path.read_bytes()
    for path in signed_run.dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes() and b"PRIVATE KEY" not in path.read_bytes()


def _copy(run: SignedRun, tmp_path: Path) -> Path:
    target = tmp_path / run.dir.name
    shutil.copytree(run.dir, target)
    return target


def _flip(rel: str) -> Callable[[Path], None]:
    def change(run_dir: Path) -> None:
        path = run_dir / rel
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    return change


def _plant(run_dir: Path) -> None:
    (run_dir / "evidence" / "db1" / "extra.txt").write_text("planted\n")


# The unit tests' tamperings, with the lab's evidence files.
LAB_TAMPERING = [t for t in TAMPERING if "evidence" not in t[3]] + [
    ("evidence byte", _flip("evidence/db2/postgresql.json"), verify.EXIT_CHANGED,
     "changed: evidence/db2/postgresql.json"),
    ("evidence added", _plant, verify.EXIT_ADDED, "added: evidence/db1/extra.txt"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "named"), [t[1:] for t in LAB_TAMPERING],
                         ids=[t[0] for t in LAB_TAMPERING])  # fmt: skip
def test_tampering_a_real_run_is_named(
    signed_run: SignedRun, tmp_path: Path, change: Callable[[Path], None], code: int, named: str
) -> None:
    run_dir = _copy(signed_run, tmp_path)
    change(run_dir)
    done = walguard_verify(run_dir, signed_run.ca.cert_path)
    assert done.returncode == code, done.stdout
    assert f"FAIL  {named}" in done.stdout
    assert not openssl_verdict(run_dir, signed_run.ca.cert_path)


@pytest.mark.parametrize("who", ["another key", "another CA", "expired"])
def test_resigning_a_real_run_is_caught(signed_run: SignedRun, tmp_path: Path, who: str) -> None:
    run_dir = _copy(signed_run, tmp_path)
    (run_dir / manifest.TIMESTAMP).unlink()
    metadata = manifest.parse((run_dir / "manifest").read_bytes()).metadata
    metadata["tsa_url"] = None
    if who == "another key":
        stranger = pki.issue(tmp_path, signed_run.ca, "stranger")
        forged = signer.Signer(stranger.key, signed_run.signer.cert)
        code = verify.EXIT_BAD_SIGNATURE
    elif who == "another CA":
        other = pki.issue(tmp_path, pki.make_ca(tmp_path, "other CA"), "stranger")
        forged, code = signer.Signer(other.key, other.cert), verify.EXIT_UNTRUSTED
    else:
        old = pki.issue(tmp_path, signed_run.ca, "old signer", days=(-30, -1))
        forged, code = signer.Signer(old.key, old.cert), verify.EXIT_EXPIRED
    sign_run(run_dir, forged, metadata)
    done = walguard_verify(run_dir, signed_run.ca.cert_path)
    assert done.returncode == code, done.stdout
    assert not openssl_verdict(run_dir, signed_run.ca.cert_path)


def test_chromium_shows_the_auditor_this_run(signed_run: SignedRun, tmp_path: Path) -> None:
    run_dir = _copy(signed_run, tmp_path)  # the screenshot must not change the signed run
    doc = signed_run.doc
    dom = browser.dump_dom(run_dir / "report.html")
    text = browser.main_view_text(dom)
    for result, count in doc["summary"]["by_result"].items():
        assert f'data-result="{result}">{count}<' in dom, result
    assert "Signed:" in text and "walguard lab signer" in text
    findings = [r for h in doc["hosts"].values() for r in h["controls"]
                if r["result"] not in ("PASS", "NOT APPLICABLE")]  # fmt: skip
    for r in findings[:5]:
        assert " ".join(r["message"].split()) in text, r
    for noise in ("Traceback", "AssertionError", "Verdict(", ".py::"):
        assert noise not in text, noise
    shot = run_dir / "screenshot.png"
    seconds = browser.screenshot(run_dir / "report.html", shot)
    print(f"screenshot {shot} rendered in {seconds:.1f} s")
    done = walguard_verify(run_dir, signed_run.ca.cert_path)
    assert done.returncode == verify.EXIT_ADDED and "added: screenshot.png" in done.stdout
    # The screenshot also goes beside the signed run, for the test's log.
    shutil.copy(shot, signed_run.dir.parent / "screenshot.png")
