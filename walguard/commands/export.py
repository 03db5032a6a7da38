"""`walguard export oscal RUN_DIR`: a finished run as an OSCAL Assessment Results document.
The run is read as hostile input (walguard.export.run_input) and mapped by walguard.export.oscal,
both imported when the command runs (every `walguard` command line builds this parser)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from walguard.commands.parsing import Subparsers, handled_by
from walguard.exit_codes import Exit


def register(sub: Subparsers) -> None:
    export = sub.add_parser(
        "export", help="write a run as a document another tool reads (OSCAL assessment results)"
    )
    formats = export.add_subparsers(dest="export_format", required=True, metavar="{oscal}")
    oscal = formats.add_parser(
        "oscal",
        help="an OSCAL Assessment Results document (JSON) of RUN_DIR, for GRC tools",
        description="Writes RUN_DIR as an OSCAL 1.2.1 Assessment Results document (JSON): one "
        "result for the run, an observation per host and control with the evidence files it "
        "cites and their SHA-256, a finding per host and control that did not pass, and the "
        "signed manifest in the back-matter. The run is read as untrusted input: a link, FIFO "
        "or device in it, a results.json walguard would not write, a path outside evidence/, "
        "or a file whose SHA-256 is not the one its manifest lists is refused. With --ca the "
        "run's signature is verified first, and the document says whether it was. Exit "
        "status: 0 written, 4 refused (one line says why), 14 or 16 a file contradicts the "
        "run's manifest, or with --ca walguard verify's status for a run that does not verify.",
    )
    oscal.add_argument("run_dir", metavar="RUN_DIR")
    oscal.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write it here (default: stdout)"
    )
    oscal.add_argument(
        "--ca", default=None, metavar="CA.pem", help="verify the run's signature against it first"
    )
    oscal.add_argument(
        "--tsa-ca", default=None, metavar="CA.pem", help="CA of the TSA (default: --ca)"
    )
    handled_by(oscal, _oscal)


def _oscal(args: argparse.Namespace) -> int:
    from walguard.export.oscal import OSCAL_VERSION, assessment_results
    from walguard.export.run_input import ExportError, read_run

    run_dir = Path(args.run_dir)
    out = Path(args.output) if args.output else None
    try:
        problem = _refused_options(args, run_dir, out)
    except OSError as exc:  # a path this user may not look at, a name too long
        problem = f"{exc.filename or run_dir}: {exc.strerror or exc}"
    if problem:
        args.parser.error(problem)
    try:
        run = read_run(run_dir, _path(args.ca), _path(args.tsa_ca))
        doc = assessment_results(run)
    except ExportError as exc:
        print(f"walguard: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:
        print(f"walguard: cannot read {exc.filename or run_dir}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return int(Exit.USAGE)
    try:
        _write(doc, out)
    except OSError as exc:
        print(f"walguard: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return int(Exit.USAGE)
    if not run.signature.verified:
        why = "signature was not verified (no --ca)" if run.signature.signed else "is not signed"
        print(f"walguard: warning: the run {why}; the document says so", file=sys.stderr)
    if out is not None:
        result = doc["assessment-results"]["results"][0]
        print(f"wrote {out}: OSCAL {OSCAL_VERSION} assessment results of run {run.run_id}, "
              f"{len(result.get('observations', []))} observations, "
              f"{len(result.get('findings', []))} findings")  # fmt: skip
    return int(Exit.OK)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _refused_options(args: argparse.Namespace, run_dir: Path, out: Path | None) -> str | None:
    """What is wrong with the command line before the run is read, or None."""
    if args.tsa_ca and not args.ca:
        return "--tsa-ca is the CA of a timestamp --ca verifies: give --ca too"
    for option, value in (("--ca", args.ca), ("--tsa-ca", args.tsa_ca)):
        if value and not Path(value).is_file():
            return f"{option} {value}: no such file"
    if not run_dir.is_dir():
        return f"{run_dir} is not a directory: name a walguard run directory"
    if out is not None:
        if out.is_dir():
            return f"-o {out} is a directory: name the file to write"
        if out.resolve().is_relative_to(run_dir.resolve()):
            return (f"-o {out} is inside the run directory: a file added there is one its "
                    "manifest does not list")  # fmt: skip
    return None


def _write(doc: dict[str, Any], out: Path | None) -> None:
    """The document as indented JSON, to `out` (whole or not at all) or to stdout."""
    data = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(data)
        return
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        partial.write_text(data, encoding="utf-8")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
