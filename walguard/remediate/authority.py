"""What a run is allowed to change with, and when a script that restarts PostgreSQL may run.

`--remediate=apply` runs a disruptive script (its header says ``disruptive: yes``) only when all
of these hold: restarts are allowed (``--allow-restart``, or its older spelling
``--allow-disruptive``), a change reference is given (``--change-ref``), the host has a change
window (``--change-window`` for the run, else its ``walguard_change_window``) and now is inside
one. What allowed it (or would have) is recorded with the outcome: the change reference, the
operator, the windows as written and the host's rollback owner.

The time comes from a clock handed in, so a test says when "now" is.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from walguard.inventory.model import Target
from walguard.policy.change_window import ChangeWindows, parse_windows

NO_CHANGE_REF = "no change reference (--change-ref)"
NO_WINDOW = "no change window (walguard_change_window or --change-window)"


def utc_now() -> datetime:
    return datetime.now(UTC)


def controller_user() -> str:
    """The OS user walguard runs as on the controller (from the password database, not from the
    environment, which any process may set), and who called sudo when run through it."""
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry for this uid (containers)
        user = f"uid {uid}"
    caller = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {caller})" if caller and caller != user else user


@dataclass(frozen=True)
class RestartRecord:
    """Kept with a disruptive script's outcome: on whose authority it ran, or would have."""

    operator: str
    change_window: tuple[str, ...]  # the windows in force for the host, as written
    rollback_owner: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "change_window": list(self.change_window),
            "rollback_owner": self.rollback_owner,
        }


@dataclass(frozen=True)
class Authority:
    """The run's --allow-restart, --change-ref and --change-window, with who runs it and a
    clock."""

    allow_restart: bool = False
    change_ref: str | None = None
    windows: ChangeWindows | None = None  # --change-window: replaces every host's windows
    operator: str = field(default_factory=controller_user)
    clock: Callable[[], datetime] = utc_now

    def windows_for(self, target: Target) -> ChangeWindows:
        if self.windows is not None:
            return self.windows
        # Read (and refused, if bad) when the inventory was: parsed again, it cannot fail.
        return parse_windows(target.policy.change_window)

    def record(self, target: Target) -> RestartRecord:
        return RestartRecord(
            self.operator, self.windows_for(target).texts, target.policy.rollback_owner
        )

    def restart_refusal(self, target: Target) -> str | None:
        """Why a disruptive script may not run on `target` now although restarts are allowed;
        None when it may."""
        if not (self.change_ref or "").strip():
            return NO_CHANGE_REF
        windows = self.windows_for(target)
        if not windows:
            return NO_WINDOW
        now = self.clock()
        if windows.contains(now):
            return None
        opens = windows.next_opening(now)
        when = opens.isoformat() if opens is not None else "no time in the next two weeks"
        return f"outside the change window ({windows.describe()}; next opens at {when})"
