"""What a run records about itself for an auditor: who ran what, when, with which walguard, on
which inventory and policy. It goes into results.json, the HTML page and the signed manifest.

Hashes let an auditor tie a report to the exact inventory and policy it was judged against
without the report having to carry them (inventory variables may hold secrets).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from walguard import __version__
from walguard.inventory.load import Target

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def utc_now() -> str:
    """An ISO 8601 UTC time to the second, with a Z: what auditors' tools parse best."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_run_name(root: Path) -> str:
    """A run directory's name: its UTC start to the second and six hex digits. Earlier runs are
    found by name order (walguard.history.previous.runs_in), so a run started in the same second
    as one already under `root` gets a suffix above that one's: it sorts after it, as it came
    after it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        same_second = [p.name for p in root.glob(f"{stamp}-*")]
    except OSError:
        same_second = []
    floor = max((int(n[-6:], 16) for n in same_second if _HEX6.fullmatch(n[-6:])), default=None)
    if floor is None or floor >= 0xFFFFFF:  # the second's first run (the top: not met)
        return f"{stamp}-{secrets.token_hex(3)}"
    # A small step up keeps room for the second's next runs (thousands of them).
    return f"{stamp}-{floor + 1 + secrets.randbelow(min(0x1000, 0xFFFFFF - floor)):06x}"


_HEX6 = re.compile(r"[0-9a-f]{6}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def operator() -> str:
    """Who ran the audit: WALGUARD_OPERATOR when set (a CI job names the person or ticket),
    else the login user, with the sudo caller when run through sudo."""
    named = os.environ.get("WALGUARD_OPERATOR", "").strip()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        user = str(os.getuid())
    caller = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {caller})" if caller and caller != user else user


def git_commit(root: Path = PROJECT_ROOT) -> tuple[str | None, bool | None]:
    """walguard's own commit and whether its tree had local changes; (None, None) when walguard
    is not run from a git checkout (an installed package)."""
    if not (root / ".git").exists():
        return None, None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(status.strip())


def inventory_files(source: str) -> list[Path]:
    """The files the inventory was read from: the source (a file, or every file of a
    directory) and the group_vars/ and host_vars/ beside it, as Ansible reads them."""
    path = Path(source)
    if not path.exists():
        return []  # a dynamic source (a plugin name, a script's output): its listing is hashed
    base = path if path.is_dir() else path.parent
    found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for sub in ("group_vars", "host_vars"):
        found += sorted(p for p in (base / sub).rglob("*") if p.is_file())
    return found


def inventory_record(source: str, listing: str | None, limit: str | None = None) -> dict[str, Any]:
    files = [{"path": str(p), "sha256": sha256_file(p)} for p in inventory_files(source)]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f['sha256']}  {f['path']}\n".encode())
    if listing is not None:
        # What ansible-inventory answered (it may differ from the files: plugins, Vault).
        digest.update(listing.encode())
    record: dict[str, Any] = {"source": source, "sha256": digest.hexdigest(), "files": files}
    if limit is not None:
        # A run of some of the inventory's hosts is compared with runs of the same selection.
        record["limit"] = limit
    return record


def policy_of(target: Target) -> dict[str, Any]:
    """A host's expected values as plain JSON data."""
    plain: dict[str, Any] = json.loads(json.dumps(asdict(target.policy), default=str))
    return plain


def policy_sha256(policy: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()


def run_policy_sha256(targets: list[Target]) -> str:
    """One hash over every host's effective policy (defaults merged with inventory vars)."""
    per_host = {t.name: policy_sha256(policy_of(t)) for t in targets}
    return hashlib.sha256(json.dumps(per_host, sort_keys=True).encode()).hexdigest()


@dataclass
class RunInfo:
    """The run's metadata; `finished` is filled in when the run ends."""

    id: str
    started: str
    command: list[str]
    pytest_args: list[str]
    operator: str
    controller: str
    inventory: dict[str, Any]
    policy_sha256: str
    fail_on: str
    remediate: str | None = None
    change_ref: str | None = None
    active_probe: bool = False
    restore_drill: bool = False
    finished: str | None = None
    walguard: dict[str, Any] = field(default_factory=dict)
    signing: dict[str, Any] | None = None  # what the signer's certificate says, when signing

    @classmethod
    def start(
        cls,
        run_id: str,
        *,
        targets: list[Target],
        inventory_source: str,
        listing: str | None,
        pytest_args: list[str],
        fail_on: str,
        remediate: str | None = None,
        change_ref: str | None = None,
        active_probe: bool = False,
        restore_drill: bool = False,
        limit: str | None = None,
    ) -> RunInfo:
        commit, dirty = git_commit()
        return cls(
            id=run_id,
            started=utc_now(),
            command=list(sys.argv),
            pytest_args=list(pytest_args),
            operator=operator(),
            controller=socket.gethostname(),
            inventory=inventory_record(inventory_source, listing, limit),
            policy_sha256=run_policy_sha256(targets),
            fail_on=fail_on,
            remediate=remediate,
            change_ref=change_ref,
            active_probe=active_probe,
            restore_drill=restore_drill,
            walguard={
                "version": __version__,
                "commit": commit,
                "dirty": dirty,
                "python": platform.python_version(),
            },
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
