"""The `walguard` command: `walguard audit` audits, `walguard verify` checks a signed run,
`walguard sign` signs a written run, `walguard export oscal` writes a run as OSCAL assessment
results, `walguard waivers approve` approves a waivers file, `walguard lab ...` manages the local
lab."""

# The docstring above is `walguard --help`'s description. Each subcommand is a module of
# walguard.commands that registers its parser and its handler; this module assembles them and
# dispatches. Every bad command line, in every subcommand, is exit status 4 and one line on
# stderr (walguard.commands.parsing).

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

from walguard import __version__
from walguard.commands import (
    audit,
    controls_list,
    examples,
    export,
    lab,
    merge,
    signing,
    waivers,
)
from walguard.commands.parsing import CommandLineError, Parser
from walguard.exit_codes import Exit

# In the order `walguard --help` lists them; signing registers verify and sign.
COMMANDS = (lab, audit, controls_list, signing, examples, merge, export, waivers)


def build_parser() -> Parser:
    parser = Parser(prog="walguard", description=__doc__, exit_codes=True)
    parser.add_argument("--version", action="version", version=f"walguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown and not args.passes_on_unknown:
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.unknown = unknown
        return int(args.handler(args))
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return int(Exit.USAGE)


def run() -> NoReturn:
    """The `walguard` command's entry point: main(), then out at once.

    Everything a run writes is written and closed when main() returns (its files, the
    terminal's lines are flushed here), so the interpreter's own shutdown, which frees every
    object one by one (an audit of 300 hosts holds over ten thousand pytest items and their
    reports: 0.6 CPU seconds), is skipped."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (`| head`): nothing more can reach it.
        with contextlib.suppress(OSError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
