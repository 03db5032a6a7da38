"""The one exception type the lab raises for problems a user can act on."""


class LabError(Exception):
    """A lab problem worth one clear sentence to the user (no traceback)."""
