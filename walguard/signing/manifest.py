"""The manifest: the run's metadata as `# key: value` comment lines, then one `SHA256  path` line
per file of the run directory, in the format `sha256sum -c` reads (GNU coreutils skips lines that
start with `#`). The manifest, its signature and the signature's timestamp are not listed: they
are what vouches for the rest.

Values in the comment lines are JSON (strings quoted), so that no value can start a new line.
Paths are relative to the run directory, with `/` separators; a path holding a backslash or a
newline is written the way sha256sum writes it (a leading `\\`, then `\\\\` and `\\n`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest"
SIGNATURE = "manifest.p7s"
TIMESTAMP = "manifest.p7s.tsr"
UNLISTED = frozenset({MANIFEST, SIGNATURE, TIMESTAMP})
FORMAT = "walguard-manifest/1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StrayEntry(OSError):
    """The directory to sign holds something other than regular files and their directories
    (an OSError: the callers that sign already report those as "could not be signed")."""


@dataclass
class Contents:
    files: list[str]  # every regular file, relative, sorted (the manifest's own files left out)
    strays: dict[str, str]  # anything else -> what it is: never listed, never followed


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def scan(run_dir: Path) -> Contents:
    """What the run directory holds, by lstat: nothing is followed through a symlink. A signed
    run is exactly its regular files: a symlink (to anything, or dangling), FIFO, socket or
    device, and a directory with no regular file beneath it, are strays."""
    found = Contents([], {})

    def walk(directory: Path, rel: str) -> bool:
        """Records directory's entries; True when a regular file lies beneath it."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            found.strays[rel or "."] = f"an unreadable directory ({exc.strerror})"
            return True  # named already: its parent is not an empty directory on top of that
        holds_file = False
        for entry in entries:
            path = f"{rel}{entry.name}"
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISREG(mode):
                holds_file = True
                if path not in UNLISTED:
                    found.files.append(path)
            elif stat.S_ISDIR(mode):
                if walk(Path(entry.path), f"{path}/"):
                    holds_file = True
                else:
                    found.strays[f"{path}/"] = "a directory holding no file"
            else:
                found.strays[path] = _kind(mode)
                holds_file = True  # named already, as above
        return holds_file

    walk(run_dir, "")
    # A directory reported as holding no file says it all: its empty subdirectories are noise.
    empty = [p for p in found.strays if p.endswith("/")]
    for path in empty:
        if any(path != other and path.startswith(other) for other in empty):
            del found.strays[path]
    found.files.sort()
    return found


def run_files(run_dir: Path) -> list[str]:
    """Every regular file under the run directory, as the manifest lists them."""
    return scan(run_dir).files


def _escape(rel: str) -> str:
    if "\\" in rel or "\n" in rel:
        return "\\" + rel.replace("\\", "\\\\").replace("\n", "\\n")
    return rel


def _unescape(rel: str, escaped: bool) -> str:
    if not escaped:
        return rel
    out, i = [], 0
    while i < len(rel):
        if rel[i] == "\\" and i + 1 < len(rel):
            out.append("\n" if rel[i + 1] == "n" else rel[i + 1])
            i += 2
        else:
            out.append(rel[i])
            i += 1
    return "".join(out)


def render(run_dir: Path, metadata: dict[str, Any]) -> bytes:
    """The manifest's bytes for the directory as it is now. StrayEntry when it holds anything
    but regular files: walguard writes only those, so anything else is not its output."""
    contents = scan(run_dir)
    if contents.strays:
        what = "; ".join(f"{p} is {k}" for p, k in contents.strays.items())
        raise StrayEntry(f"{run_dir}: {what}: a signed run holds only regular files")
    lines = [f"# {FORMAT}"]
    for key, value in metadata.items():
        lines.append(f"# {key}: {json.dumps(value, ensure_ascii=False)}")
    for rel in contents.files:
        name = _escape(rel)
        prefix = "\\" if name.startswith("\\") else ""
        lines.append(f"{prefix}{sha256_file(run_dir / rel)}  {name.removeprefix(chr(92))}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def write(run_dir: Path, metadata: dict[str, Any]) -> bytes:
    data = render(run_dir, metadata)
    (run_dir / MANIFEST).write_bytes(data)
    return data


@dataclass
class Manifest:
    metadata: dict[str, Any]
    files: dict[str, str]  # path -> sha256
    malformed: list[str] = field(default_factory=list)


def parse(data: bytes) -> Manifest:
    metadata: dict[str, Any] = {}
    files: dict[str, str] = {}
    malformed: list[str] = []
    for number, raw in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):
        if not raw:
            continue
        if raw.startswith("#"):
            key, sep, value = raw[1:].strip().partition(": ")
            if sep:
                try:
                    metadata[key] = json.loads(value)
                except ValueError:
                    metadata[key] = value
            continue
        escaped = raw.startswith("\\")
        line = raw[1:] if escaped else raw
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            malformed.append(f"line {number}")
            continue
        path = _unescape(rel, escaped)
        if path.startswith("/") or ".." in path.split("/") or not path:
            # Only files inside the run directory are vouched for; anything else is not ours.
            malformed.append(f"line {number} (path outside the run directory)")
            continue
        files[path] = digest
    return Manifest(metadata, files, malformed)


@dataclass
class FileCheck:
    changed: list[str]
    missing: list[str]
    added: list[str]  # regular files the manifest does not list
    strays: dict[str, str] = field(default_factory=dict)  # added, and not even a regular file

    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.strays)


def check(run_dir: Path, manifest: Manifest) -> FileCheck:
    """Every listed file against its hash, and everything present against the list. A listed
    path that is now a symlink is missing (the file is gone) and the symlink a stray."""
    contents = scan(run_dir)
    present = set(contents.files)
    changed, missing = [], []
    for rel, digest in sorted(manifest.files.items()):
        if rel not in present:
            missing.append(rel)
        elif sha256_file(run_dir / rel) != digest:
            changed.append(rel)
    added = sorted(present - set(manifest.files))
    return FileCheck(changed, missing, added, contents.strays)
