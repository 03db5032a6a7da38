"""Exceptions that turn into results (ERROR), never into tracebacks in a report."""


class FactUnavailable(Exception):
    """A fact could not be collected or parsed: every control needing it is ERROR, never PASS."""


class UsageError(Exception):
    """Bad input from the user (inventory, policy, options): one clear line, usage exit code."""
