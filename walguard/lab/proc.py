"""Running local commands for the lab, with errors turned into one readable sentence."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from walguard.lab.errors import LabError


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run argv (no shell), capture its output, raise LabError naming the command if it fails."""
    try:
        done = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        last = detail[-1] if detail else "no output"
        raise LabError(f"{' '.join(argv[:3])} failed (exit {done.returncode}): {last}")
    return done


def require_tools(tools: Sequence[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(
            f"missing tools: {', '.join(missing)} (run `make deps` or install them with apt-get)"
        )
