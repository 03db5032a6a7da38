"""Exceptions that turn into results (ERROR), never into tracebacks in a report."""


class FactUnavailable(Exception):
    """A fact could not be collected or parsed: every control needing it is ERROR, never PASS."""


class UsageError(Exception):
    """Bad input from the user (inventory, policy, options): one clear line, usage exit code."""


def one_line(text: str) -> str:
    """`text` as one printable line: a control character (a newline, a tab, NUL, an escape
    sequence's ESC) that input smuggled into a message is shown escaped, as Python writes it,
    so an error stays one line and cannot redraw the operator's terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
