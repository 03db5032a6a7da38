"""`walguard examples [NAME]`: the examples shipped with walguard (examples/ in a checkout), so
that a jump host with only the package installed has its nightly units:
`walguard examples NAME > FILE`."""

from __future__ import annotations

import argparse
import sys

from walguard.commands.parsing import Subparsers, handled_by
from walguard.exit_codes import Exit


def register(sub: Subparsers) -> None:
    examples = sub.add_parser(
        "examples",
        help="print a shipped example: the nightly audit's systemd units and env file, the cron "
        "line, the CI pipelines (without NAME: list them)",
    )
    examples.add_argument(
        "name", nargs="?", metavar="NAME", help="e.g. systemd/walguard-audit@.service"
    )
    handled_by(examples, run)


def run(args: argparse.Namespace) -> int:
    """NAME's text on stdout; without NAME, every example's name, one a line."""
    from walguard.paths import LAYOUT

    base = LAYOUT.examples
    shipped = sorted(
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    if args.name is None:
        print("\n".join(shipped))
        return int(Exit.OK)
    if args.name not in shipped:
        print(
            f"walguard: no example {args.name!r}; there are: {', '.join(shipped)}",
            file=sys.stderr,
        )
        return int(Exit.USAGE)
    sys.stdout.write((base / args.name).read_text())
    return int(Exit.OK)
