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


def run_files(run_dir: Path) -> list[str]:
    """Every regular file under the run directory (symlinks are listed as files and hashed
    through; a symlink out of the directory would be noticed as changed content)."""
    found = []
    for path in run_dir.rglob("*"):
        rel = path.relative_to(run_dir).as_posix()
        if rel in UNLISTED or path.is_dir():
            continue
        found.append(rel)
    return sorted(found)


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
    """The manifest's bytes for the directory as it is now."""
    lines = [f"# {FORMAT}"]
    for key, value in metadata.items():
        lines.append(f"# {key}: {json.dumps(value, ensure_ascii=False)}")
    for rel in run_files(run_dir):
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
    added: list[str]

    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added)


def check(run_dir: Path, manifest: Manifest) -> FileCheck:
    """Every listed file against its hash, and every file present against the list."""
    present = set(run_files(run_dir))
    changed, missing = [], []
    for rel, digest in sorted(manifest.files.items()):
        path = run_dir / rel
        if rel not in present or not path.is_file():
            missing.append(rel)
        elif sha256_file(path) != digest:
            changed.append(rel)
    added = sorted(present - set(manifest.files))
    return FileCheck(changed, missing, added)
