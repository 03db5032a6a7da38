"""Reading and writing inside a lab host's root filesystem from this machine: a user's ids as the
root's own /etc/passwd has them (not this machine's), and a file with its owner and mode."""

from __future__ import annotations

import os
from pathlib import Path

from walguard.lab.errors import LabError


def passwd_ids(root: Path, user: str) -> tuple[int, int]:
    """uid and gid of a user in an image's /etc/passwd (not this machine's)."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"user {user} missing from the image at {root}")


def write_file(path: Path, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, *owner)
    path.chmod(mode)
