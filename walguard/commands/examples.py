"""`walguard examples [NAME]`: the examples shipped with walguard (examples/ in a checkout), so
that a jump host with only the package installed has its nightly units and an example
inventory: `walguard examples NAME > FILE`, or `walguard examples inventory --write DIR` for a
directory of them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walguard.commands.parsing import Subparsers, handled_by
from walguard.exit_codes import Exit


def register(sub: Subparsers) -> None:
    examples = sub.add_parser(
        "examples",
        help="print a shipped example: the nightly audit's systemd units and env file, the cron "
        "line, the CI pipelines (without NAME: list them)",
    )
    examples.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="e.g. systemd/walguard-audit@.service, or a directory of them such as inventory "
        "(a bank's example estate: inventory.yml with group_vars/ and host_vars/)",
    )
    examples.add_argument(
        "--write",
        metavar="DIR",
        type=Path,
        help="write NAME (a file, or every file under a directory) into DIR, keeping its "
        "relative paths, instead of printing it; an existing file is never overwritten",
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
        if args.write is not None:
            return _usage("--write needs NAME (walguard examples lists them)")
        print("\n".join(shipped))
        return int(Exit.OK)
    name = args.name.strip("/")
    chosen = [s for s in shipped if s == name or s.startswith(f"{name}/")]
    if not chosen:
        return _usage(f"no example {args.name!r}; there are: {', '.join(shipped)}")
    if args.write is None:
        if chosen != [name]:
            return _usage(f"{name} is a directory of examples: give --write DIR to write them")
        sys.stdout.write((base / name).read_text())
        return int(Exit.OK)
    return _write(base, name, chosen, args.write)


def _write(base: Path, name: str, chosen: list[str], into: Path) -> int:
    """The chosen files under `into`, relative to `name`'s directory (a single file keeps its
    own name); nothing is written when any of them exists already."""
    top = base / name
    root = top.parent if top.is_file() else top
    targets = {rel: into / (base / rel).relative_to(root) for rel in chosen}
    there = [str(t) for t in targets.values() if t.exists() or t.is_symlink()]
    if there:
        return _usage(f"--write {into}: {there[0]} exists (nothing written)")
    try:
        for rel, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x") as out:  # never through a file or link that appeared since
                out.write((base / rel).read_text())
    except OSError as exc:
        return _usage(f"--write {into}: {exc.strerror or exc}: {exc.filename or into}")
    for target in targets.values():
        print(target)
    return int(Exit.OK)


def _usage(message: str) -> int:
    print(f"walguard: {message}", file=sys.stderr)
    return int(Exit.USAGE)
