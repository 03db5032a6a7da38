"""What every subcommand's parser shares: one usage error (exit 4, one line on stderr), the
handler each subcommand names for itself, and the signing options of audit, sign, merge and
waivers approve."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias

from walguard.exit_codes import help_text

Handler: TypeAlias = Callable[[argparse.Namespace], int]
# A string: argparse's class cannot be subscripted at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

SIGN_OPTIONS = {
    "key": "PEM private key that signs the run's manifest",
    "cert": "PEM certificate of that key (then any chain)",
    "chain": "PEM intermediate certificates to include",
    "pkcs12": "PKCS#12 file with key, certificate and chain",
    "password-file": "file whose first line is the key's password",
}


class CommandLineError(Exception):
    """A bad command line, found by argparse or after it: `walguard` prints this one line on
    stderr and exits 4 (walguard.exit_codes.Exit.USAGE), whichever subcommand it was."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`walguard verify: error: ...`), not the usage
    dump then the error, and exit status 4, not argparse's 2 (which is walguard's
    "interrupted"). Subparsers are made of this class too. --help is argparse's own, ending,
    with `exit_codes=True`, with walguard's exit codes (walguard.exit_codes.help_text) as its
    epilog, laid out as a table rather than filled as argparse fills an epilog."""

    def __init__(self, *args: Any, exit_codes: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exit_codes = exit_codes

    def format_help(self) -> str:
        text = super().format_help()
        if not self.exit_codes:
            return text
        return f"{text}\n{help_text(self._get_formatter()._width)}"

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self.prog, message)


def handled_by(
    parser: argparse.ArgumentParser, handler: Handler, *, passes_on_unknown: bool = False
) -> None:
    """`handler` runs the (sub)command `parser` parses. Arguments no parser knows are a usage
    error in `parser`'s name, unless it `passes_on_unknown` (audit gives them to pytest, in
    `args.unknown`)."""
    parser.set_defaults(handler=handler, parser=parser, passes_on_unknown=passes_on_unknown)


def add_sign_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    what: str = "signs the run's manifest",
) -> None:
    """--sign-key, --sign-cert, --sign-chain, --sign-pkcs12, --sign-password-file; `what` the
    key does, for --sign-key's help."""
    for name, text in SIGN_OPTIONS.items():
        text = text.replace("signs the run's manifest", what)
        parser.add_argument(f"--sign-{name}", default=None, metavar="FILE", help=text)
