"""Writing a finished run: results.json, report.html from it, then (when asked) the signed
manifest. The pytest plugin calls this once, at the end of the run, on the controller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from walguard.audit.run import AuditRun
from walguard.exit_codes import Exit
from walguard.report import html, results_json
from walguard.report.runinfo import RunInfo
from walguard.results import Result
from walguard.signing import signer as signing
from walguard.signing.sign_run import manifest_metadata, sign_run
from walguard.signing.tsa import TimestampError

# The audit's verdicts were written but the run could not be signed (README: Exit codes).
EXIT_NOT_SIGNED = int(Exit.NOT_SIGNED)


@dataclass(frozen=True)
class Signing:
    signer: signing.Signer
    tsa_url: str | None


def add_options(group: Any) -> None:
    """Signing options of `walguard audit` (and of `pytest checks`)."""
    for name, what in (
        ("key", "PEM private key that signs the run's manifest (env WALGUARD_SIGN_KEY)"),
        ("cert", "PEM certificate of that key, then any chain (env WALGUARD_SIGN_CERT)"),
        ("chain", "PEM intermediate certificates to include (env WALGUARD_SIGN_CHAIN)"),
        ("pkcs12", "PKCS#12 file with key, certificate and chain (env WALGUARD_SIGN_PKCS12)"),
        ("password-file", "file holding the key's password (env WALGUARD_SIGN_PASSWORD_FILE; "
                          "or the password itself in WALGUARD_SIGN_PASSWORD)"),
    ):  # fmt: skip
        group.addoption(f"--sign-{name}", default=None, metavar="FILE", help=what)
    group.addoption(
        "--tsa-url",
        default=None,
        metavar="URL",
        help="RFC 3161 time-stamping authority for the signature (env WALGUARD_TSA_URL)",
    )


def signer_from(config: pytest.Config) -> Signing | None:
    """The run's signer, from options or the environment; None when not signing. Bad key
    material is a usage error before any host is touched."""
    opts = signing.SignOptions.resolve(
        key=config.getoption("sign_key"),
        cert=config.getoption("sign_cert"),
        chain=config.getoption("sign_chain"),
        pkcs12=config.getoption("sign_pkcs12"),
        password_file=config.getoption("sign_password_file"),
        tsa_url=config.getoption("tsa_url"),
    )
    if not opts.wanted():
        if opts.tsa_url and config.getoption("tsa_url"):
            raise pytest.UsageError("--tsa-url timestamps a signature: give a signing key too")
        return None
    try:
        return Signing(signing.load(opts), opts.tsa_url)
    except signing.SignerError as exc:
        raise pytest.UsageError(f"cannot sign the run: {exc}") from None


def write_run(
    run: AuditRun,
    results: list[Result],
    info: RunInfo,
    *,
    code: int,
    gate: int,
    signing: Signing | None,
    extra: dict[str, Any] | None = None,
) -> str | None:
    """Writes the run's files; returns why the run could not be signed, or None."""
    run_dir = run.run_dir
    if run_dir is None:  # a run without a directory (the plugin never asks for one) writes nothing
        return None
    if signing is not None:
        info.signing = signing.signer.describe(signing.tsa_url)
    doc = results_json.build(run, results, info, code=code, gate=gate, run_dir=run_dir)
    # Drift, waivers and baseline (walguard.history.run_inputs): before the page and the signature.
    doc.update(extra or {})
    results_json.write(doc, run_dir)
    html.write(doc, run_dir)
    if signing is None:
        return None
    try:
        sign_run(run_dir, signing.signer, manifest_metadata(doc), signing.tsa_url)
    except TimestampError as exc:
        return f"the run is signed but has no timestamp: {exc}"
    except OSError as exc:
        return f"the run could not be signed: {exc}"
    return None
