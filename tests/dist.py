"""Building walguard's wheel and sdist as a user would, and installing them into a fresh
virtualenv, for the packaging tests.

Builds run in a copy of the work tree (its tracked and new files, as they are now), because
setuptools writes build/ and *.egg-info/ into the tree it builds from.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def copy_tree(dest: Path) -> Path:
    """The work tree's files (tracked, and new ones not ignored) copied to `dest`."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():  # a tracked file deleted in the tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def build(source: Path, out: Path, kind: str) -> Path:
    """Build a wheel (`pip wheel`, as a user would) or an sdist (setuptools' PEP 517 hook, what
    any build front end calls) of the project in `source`; returns the file."""
    out.mkdir(parents=True, exist_ok=True)
    if kind == "wheel":
        argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                "-w", str(out), str(source)]  # fmt: skip
    else:
        code = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
        argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, cwd=source, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    pattern = "walguard-*.whl" if kind == "wheel" else "walguard-*.tar.gz"
    (found,) = out.glob(pattern)
    return found


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {n for n in z.namelist() if ".dist-info/" not in n}


def sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as t:
        return {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile() and "/" in m.name}


def runtime_requirements(wheel: Path) -> list[str]:
    """The distributions the wheel needs at run time (its Requires-Dist without extras, and
    theirs, as installed here), by canonical name."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(name).decode()
    env = dict(default_environment())
    # A requirement's marker is judged once, with the extras of whoever requires it (the
    # wheel's own: none): psycopg-binary's `extra == "binary"` is psycopg's extra, not its own.
    todo = [Requirement(line.split(":", 1)[1]) for line in text.splitlines()
            if line.startswith("Requires-Dist:")]  # fmt: skip
    todo = [r for r in todo if r.marker is None or r.marker.evaluate({**env, "extra": ""})]
    seen: dict[str, set[str]] = {}
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        if key in seen and set(req.extras) <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | set(req.extras)
        extras = {"", *seen[key]}
        for line in metadata.requires(req.name) or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in extras):
                todo.append(sub)
    return sorted(seen)


def pinned_subset(names: list[str], dest: Path, lock: str = "requirements-dev.txt") -> Path:
    """The blocks of a hash-pinned lock for `names`: what `make venv` would install of them,
    with the same hashes."""
    blocks: list[list[str]] = []
    for line in (REPO / lock).read_text().splitlines(keepends=True):
        if re.match(r"[A-Za-z0-9]", line):
            blocks.append([line])
        elif blocks and line[:1] in (" ", "\t"):
            blocks[-1].append(line)
    chosen = [b for b in blocks if canonicalize_name(re.split(r"[=<>!~\[; ]", b[0])[0]) in names]
    missing = set(names) - {canonicalize_name(re.split(r"[=<>!~\[; ]", b[0])[0]) for b in chosen}
    assert not missing, f"{lock} does not pin {sorted(missing)}"
    dest.write_text("".join("".join(b) for b in chosen))
    return dest


def fresh_venv(path: Path) -> Path:
    """A new virtualenv (no system site-packages: nothing of this checkout leaks in); its
    python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path / "bin" / "python"
