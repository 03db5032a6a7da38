"""`walguard controls`: every control walguard ships (and, with --checks DIR, the installation's
own): id, title, severity, framework references, paired remediation, whether it is disruptive and
which option it needs, as a table or `--format json`. Lists; judges nothing, writes nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from walguard.commands.parsing import Subparsers, handled_by
from walguard.exit_codes import Exit


def register(sub: Subparsers) -> None:
    controls = sub.add_parser(
        "controls",
        help="list every control: id, title, severity, references, remediation (--format json)",
    )
    controls.add_argument("--format", choices=("table", "json"), default="table")
    controls.add_argument(
        "--checks",
        action="append",
        default=[],
        metavar="DIR",
        help="also your own controls in DIR (as walguard audit --checks)",
    )
    handled_by(controls, run)


def _record(meta: Any) -> dict[str, Any]:
    return {
        "id": meta.id,
        "title": meta.title,
        "severity": meta.severity,
        "refs": list(meta.refs),
        "remediation": meta.remediation,
        "disruptive": meta.disruptive,
        "opt_in": meta.opt_in,
    }


def run(args: argparse.Namespace) -> int:
    from walguard import paths
    from walguard.controls import ControlsError, load_all, table_order

    try:
        found = load_all(paths.CHECKS_DIR, [Path(d) for d in args.checks])
    except ControlsError as exc:
        print(f"walguard controls: error: {exc}", file=sys.stderr)
        return int(Exit.USAGE)
    records = [_record(meta) for meta in sorted(found.values(), key=table_order)]
    if args.format == "json":
        json.dump(records, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return int(Exit.OK)
    for r in records:
        extra = [f"fix: {r['remediation']}" if r["remediation"] else "no paired fix"]
        if r["disruptive"]:
            extra.append("disruptive")
        if r["opt_in"]:
            extra.append(f"only with {r['opt_in']}")
        refs = f" [{', '.join(r['refs'])}]" if r["refs"] else ""
        print(f"{r['id']}  {r['severity']:<8}  {r['title']}{refs} ({'; '.join(extra)})")
    return int(Exit.OK)
