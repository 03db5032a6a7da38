"""Copying a directory tree that someone else wrote (a shard given to `walguard merge`) without
trusting it: only directories and regular files are copied, and never through a link. A symbolic
link, FIFO, socket or device anywhere in the tree is refused, naming it, rather than skipped: a
copy that silently lost a file would be evidence with a hole in it, and a link followed would
copy whatever it points at (a key of the controller) into a run that is then signed.

Every directory is opened relative to its parent's descriptor with O_NOFOLLOW, and every file
with O_NOFOLLOW | O_NONBLOCK and checked with fstat once open, so an entry swapped for a link or
a FIFO between the look and the open is refused too, never followed or waited on. With `Limits`,
a file larger than any walguard writes, or a tree of more files or bytes than a run holds, is
refused too (counted as copied, so a file that grows while being read is caught as well).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

# walguard writes at most evidence/HOST/FILE; a tree much deeper than that is not a run.
MAX_DEPTH = 16
CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """An entry that cannot be copied safely; the message names it, relative to the tree."""


@dataclass(frozen=True)
class Limits:
    """The most a tree may hold: bytes in one file, files, bytes in all."""

    file_bytes: int
    files: int
    total_bytes: int


class _Budget:
    """What is left of the limits while copying (None: no limits)."""

    def __init__(self, limits: Limits | None) -> None:
        self.limits = limits
        self.files = 0
        self.total = 0

    def file(self, rel: str) -> None:
        self.files += 1
        if self.limits is not None and self.files > self.limits.files:
            raise Refused(f"{rel}: more than {self.limits.files} files in the tree")

    def bytes(self, rel: str, in_file: int, added: int) -> None:
        """`added` bytes more of `rel` copied, `in_file` of it so far (or, with `added` 0, the
        size it says it has, before a byte of it is read)."""
        self.total += added
        if self.limits is None:
            return
        if in_file > self.limits.file_bytes:
            raise Refused(f"{rel}: larger than {_size(self.limits.file_bytes)}")
        if self.total + (0 if added else in_file) > self.limits.total_bytes:
            raise Refused(f"{rel}: the tree holds more than {_size(self.limits.total_bytes)}")


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file or directory"


def copy_tree(source: Path, dest: Path, limits: Limits | None = None) -> int:
    """Copies the tree `source` into `dest`, which must not exist yet; returns how many files
    it copied. `source` itself may be a link (the operator named it); nothing in it may be."""
    top = os.open(source, _DIR & ~os.O_NOFOLLOW)
    try:
        dest.mkdir()
        return _copy_dir(top, dest, "", 0, _Budget(limits))
    finally:
        os.close(top)


def _copy_dir(fd: int, dest: Path, prefix: str, depth: int, budget: _Budget) -> int:
    if depth > MAX_DEPTH:
        raise Refused(f"{prefix}: more than {MAX_DEPTH} directories deep")
    copied = 0
    for name in sorted(os.listdir(fd)):
        rel = prefix + name
        try:
            name.encode("utf-8")  # the manifest lists every path as UTF-8
        except UnicodeEncodeError:
            raise Refused(f"{rel!r}: a name that is not UTF-8") from None
        try:
            seen = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(seen.st_mode):
                sub = _open(name, fd, _DIR, rel, seen)
                try:
                    (dest / name).mkdir()
                    copied += _copy_dir(sub, dest / name, rel + "/", depth + 1, budget)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(seen.st_mode):
                budget.file(rel)
                budget.bytes(rel, seen.st_size, 0)  # refused before a byte is read
                _copy_file(_open(name, fd, _FILE, rel, seen), dest / name, rel, budget)
                copied += 1
            else:
                raise Refused(f"{rel} is {kind(seen.st_mode)}")
        except OSError as exc:
            raise Refused(f"{rel}: {exc.strerror or exc}") from None
    return copied


def _open(name: str, parent: int, flags: int, rel: str, seen: os.stat_result) -> int:
    """`name` opened without following a link, and still the entry that was looked at."""
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        # ELOOP: a link now stands where the look found a directory or a file.
        raise Refused(f"{rel} changed while being copied ({exc.strerror})") from None
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino, stat.S_IFMT(now.st_mode)) != (
        seen.st_dev,
        seen.st_ino,
        stat.S_IFMT(seen.st_mode),
    ):
        os.close(fd)
        raise Refused(f"{rel} changed while being copied (another entry now stands there)")
    return fd


def _copy_file(src: int, dest: Path, rel: str, budget: _Budget) -> None:
    try:
        out = os.open(dest, _NEW, 0o644)
        try:
            done = 0
            while chunk := os.read(src, CHUNK):
                done += len(chunk)
                budget.bytes(rel, done, len(chunk))
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        finally:
            os.close(out)
    finally:
        os.close(src)
