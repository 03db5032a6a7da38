"""Signed runs for the signing tests: a synthetic run signed by a test signer, `walguard verify`
as the operator runs it, and the README's plain OpenSSL block run exactly as printed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tests import pki
from walguard.report import results_json, synthetic, writer
from walguard.signing import signer, verify
from walguard.signing.sign_run import manifest_metadata, sign_run

README = Path(__file__).resolve().parents[1] / "README.md"


def template_run(directory: Path) -> Path:
    """An unsigned synthetic run, to be copied for each test."""
    run_dir = synthetic.new_run_dir(directory)
    run, _, info = synthetic.make_run(run_dir, 6, 25)
    assert writer.write_run(run, run.complete("x"), info, code=1, gate=1, signing=None) is None
    return run_dir


def signed(template: Path, tmp: Path, key: signer.Signer, tsa_url: str | None = None) -> Path:
    run_dir = tmp / template.name
    shutil.copytree(template, run_dir)
    doc = results_json.read(run_dir)
    doc["run"]["signing"] = key.describe(tsa_url)
    sign_run(run_dir, key, manifest_metadata(doc), tsa_url)
    return run_dir


def signer_of(issued: pki.Issued) -> signer.Signer:
    """A signer as walguard holds one, without load()'s checks (to make runs it would refuse)."""
    return signer.Signer(issued.key, issued.cert)


def readme_steps() -> dict[int, str]:
    """The numbered steps of the README's "Without walguard" block, as printed there."""
    text = README.read_text()
    block = text[text.index("**Without walguard**") :]
    block = block[block.index("```\n") + 4 :]
    block = block[: block.index("```")]
    steps: dict[int, str] = {}
    number = 0
    for line in block.splitlines(keepends=True):
        m = re.match(r"# (\d+)\. ", line)
        number = int(m.group(1)) if m else number
        if number:
            steps[number] = steps.get(number, "") + line
    return steps


def run_readme(
    run_dir: Path, steps: tuple[int, ...], names: Mapping[str, Path], env: Mapping[str, str] = {}
) -> subprocess.CompletedProcess[str]:
    """The README's steps, exactly, with its file names (bank-ca.pem, ...) replaced by `names`."""
    script = "".join(readme_steps()[n] for n in steps)
    for name, path in names.items():
        script = script.replace(name, str(path))
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=run_dir, env={**_base_env(), **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def openssl_verdict(
    run_dir: Path, ca: Path, crl: Path | None = None, env: Mapping[str, str] = {}
) -> bool:
    """The README's steps 1 to 4 (and 5 with a CRL): the signature and chain, the signer's
    extensions, every file's SHA-256, nothing added. Steps 2 and 4 print only problems."""
    steps = (1, 2, 3, 4, 5) if crl else (1, 2, 3, 4)
    names = {"bank-ca.pem": ca, **({"bank-ca.crl": crl} if crl else {})}
    done = run_readme(run_dir, steps, names, env)
    return done.returncode == 0 and not done.stdout.strip()


def walguard_verify(
    run_dir: Path, ca: Path, *extra: str, env: Mapping[str, str] = {}
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", "verify", str(run_dir), "--ca", str(ca), *extra],
        env={**_base_env(), **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _base_env() -> dict[str, str]:
    # The machine's own trust settings are not the test's: each test sets those it means.
    return {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_DIR", "SSL_CERT_FILE")}


# Ways to tamper with a signed run, each with the exit status and the words `walguard verify`
# must answer with.
def _byte(rel: str) -> Callable[[Path], None]:
    def change(run_dir: Path) -> None:
        path = run_dir / rel
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    return change


def _remove(run_dir: Path) -> None:
    (run_dir / "report.html").unlink()


def _add(run_dir: Path) -> None:
    (run_dir / "evidence" / "db0001" / "extra.txt").write_text("planted\n")


def _manifest_edit(run_dir: Path) -> None:
    path = run_dir / "manifest"
    path.write_text(path.read_text().replace('"root"', '"somebody else"', 1) + "\n")


TAMPERING = [
    ("html byte", _byte("report.html"), verify.EXIT_CHANGED, "changed: report.html"),
    ("json byte", _byte("results.json"), verify.EXIT_CHANGED, "changed: results.json"),
    ("evidence byte", _byte("evidence/db0002/collector.txt"), verify.EXIT_CHANGED,
     "changed: evidence/db0002/collector.txt"),
    ("file removed", _remove, verify.EXIT_MISSING, "missing: report.html"),
    ("file added", _add, verify.EXIT_ADDED, "added: evidence/db0001/extra.txt"),
    ("manifest edited", _manifest_edit, verify.EXIT_BAD_SIGNATURE, "signature:"),
]  # fmt: skip
