"""A status line while a long run collects facts: hosts done of the total, how many could not be
read so far, and the slowest host so far.

Only on a terminal: one line, rewritten in place with a carriage return (as pytest's own
"collecting ..." line is), a few times a second at most, and erased before pytest writes again.
When the output is not a terminal (a CI log, a pipe, a file) nothing at all is written, so logs
hold pytest's output and walguard's summary and nothing else.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol

from walguard.facts.fanout import Done

MIN_INTERVAL_S = 0.2


class Terminal(Protocol):
    """What the status line needs of pytest's TerminalReporter."""

    isatty: Any  # pytest's CallableBool: true when the output is a terminal

    def rewrite(self, line: str, **markup: bool) -> None: ...

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None: ...

    def flush(self) -> None: ...


class Progress:
    """Called once per host as its facts arrive (from the fan-out, one call at a time)."""

    def __init__(
        self,
        terminal: Terminal | None,
        total: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.terminal = terminal if terminal is not None and terminal.isatty else None
        self.total = total
        self.done = 0
        self.unreachable = 0
        self.slowest: Done | None = None
        self._clock = clock
        self._width = width
        self._drawn_at: float | None = None
        self._shown = False

    def host_done(self, done: Done) -> None:
        self.done += 1
        self.unreachable += not done.reachable
        if self.slowest is None or done.seconds > self.slowest.seconds:
            self.slowest = done
        now = self._clock()
        last = self.done == self.total
        if self._drawn_at is None or now - self._drawn_at >= MIN_INTERVAL_S or last:
            self._drawn_at = now
            self._draw()

    def line(self) -> str:
        text = f"walguard: facts of {self.done}/{self.total} hosts, {self.unreachable} unreachable"
        if self.slowest is not None:
            text += f", slowest {self.slowest.host} {self.slowest.seconds:.1f} s"
        return text

    def _draw(self) -> None:
        if self.terminal is None:
            return
        # One column short of the width: a line that fills it would wrap, and the carriage
        # return would then rewrite only its second half.
        line = self.line()[: max(self._width() - 1, 1)]
        self.terminal.rewrite(line, erase=True)
        self.terminal.flush()
        self._shown = True

    def clear(self) -> None:
        """Erases the line and leaves the cursor where the line began, for pytest to write on."""
        if self.terminal is None or not self._shown:
            return
        self.terminal.rewrite("", erase=True)
        self.terminal.write("\r", flush=True)
        self._shown = False
