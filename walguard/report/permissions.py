"""Who may read a run directory: its owner and the owner's group, nobody else.

Evidence can hold credentials (an `archive_command` with a password in it, a connection string),
so a run directory is 0750 and its files 0640 whatever the shell's umask was, unless the operator
says otherwise in WALGUARD_REPORT_UMASK (e.g. 077 for owner only, 022 to let a web server read
the reports). The umask is the process's, so every writer (the controller, xdist workers it
starts, merge, sign) creates files with it without each having to remember a mode.
"""

from __future__ import annotations

import os
import re

UMASK_ENV = "WALGUARD_REPORT_UMASK"
DEFAULT_UMASK = 0o027


class UmaskError(ValueError):
    """WALGUARD_REPORT_UMASK is not an octal umask."""


def report_umask(environ: dict[str, str] | None = None) -> int:
    value = (os.environ if environ is None else environ).get(UMASK_ENV, "").strip()
    if not value:
        return DEFAULT_UMASK
    if not re.fullmatch(r"0?[0-7]{3}", value):
        raise UmaskError(f"{UMASK_ENV}={value!r}: expected an octal umask such as 027 or 077")
    return int(value, 8)


def restrict() -> None:
    """Sets the process's umask for what the run writes; UmaskError for a bad setting."""
    os.umask(report_umask())
