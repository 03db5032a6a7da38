"""pytest's usage errors in `walguard audit`, as every other subcommand's: one line on stderr
and exit status 4. pytest prints its own as argparse's usage dump, the error, then its inifile
and rootdir (an option it does not know, a bad --fail-on) or as `ERROR: ...` and a blank line
(the plugin's: an inventory not found, a bad --limit); the status is 4 either way."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from walguard.commands.parsing import CommandLineError

PROG = "walguard audit"


class UsageErrors:
    """A pytest plugin object (pytest.main's `plugins=`): a UsageError from parsing the command
    line or from the run (raised before any host is touched) leaves pytest.main as one
    CommandLineError, which `walguard` prints."""

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_parse(self) -> Generator[None, pytest.Config, pytest.Config]:
        try:
            return (yield)
        except pytest.UsageError as exc:
            raise CommandLineError(PROG, one_line(exc)) from None

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_main(self) -> Generator[None, int, int]:
        try:
            return (yield)
        except pytest.UsageError as exc:
            raise CommandLineError(PROG, one_line(exc)) from None


def one_line(exc: pytest.UsageError) -> str:
    """The error itself. argparse's (pytest's parser) is a usage dump, `PROG: error: WHAT`, then
    pytest's inifile and rootdir lines: WHAT alone. Any other message is walguard's own, one
    line as a rule: its lines are joined."""
    lines = [line.strip() for msg in exc.args for line in str(msg).splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):
        for line in lines:
            if ": error: " in line:
                return line.split(": error: ", 1)[1]
    return "; ".join(lines)
