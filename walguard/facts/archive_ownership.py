"""Who owns each archived file, its mode, and who the restore runs as: whether recovery can read
the archive and whether anyone but its owner can rewrite it (WG-ACT-008).

Why apart from the listing: recovery's `restore_command` runs as the cluster's owner (or the
user the policy names), not as root, so a file the audit reads fine as root may stop a restore;
and a segment that the archive's group or everyone may write can be replaced by WAL that a
recovery would replay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section, need

_ID = re.compile(r"uid=(\d+)\(([^)]*)\) gid=(\d+)\(([^)]*)\)(?: groups=(\S+))?")
_GROUP = re.compile(r"(\d+)\(([^)]*)\)")


@dataclass(frozen=True)
class FileMode:
    name: str
    owner: str
    group: str
    uid: int
    gid: int
    mode: int


@dataclass(frozen=True)
class RestoreUser:
    name: str
    uid: int
    gids: frozenset[int]  # primary and supplementary groups

    def can_read(self, f: FileMode) -> bool:
        if self.uid == 0:
            return True
        if f.uid == self.uid:
            return bool(f.mode & 0o400)
        if f.gid in self.gids:
            return bool(f.mode & 0o040)
        return bool(f.mode & 0o004)


@dataclass(frozen=True)
class Ownership:
    files: dict[str, FileMode]
    restore: RestoreUser


def parse_modes(section: Section) -> dict[str, FileMode]:
    """`find DIR -mindepth 1 -maxdepth 1 -printf '%f|%u|%g|%U|%G|%m\\n'`."""
    if section.rc != 0:
        raise FactUnavailable(f"listing the archive's owners failed (exit {section.rc})")
    files = {}
    for line in section.output.splitlines():
        if not line:
            continue
        parts = line.rsplit("|", 5)
        try:
            name, owner, group, uid, gid, mode = parts
            files[name] = FileMode(name, owner, group, int(uid), int(gid), int(mode, 8))
        except ValueError:
            raise FactUnavailable(f"unparsable archive owner line: {line[:200]!r}") from None
    return files


def parse_restore_user(section: Section) -> RestoreUser:
    """`id -- USER`: uid=105(postgres) gid=111(postgres) groups=111(postgres),110(ssl-cert)."""
    m = _ID.fullmatch(section.output.strip())
    if section.rc != 0 or m is None:
        first = section.output.strip().splitlines()[:1] or ["no output"]
        raise FactUnavailable(f"the restore user is unknown on the host: {first[0][:200]}")
    gids = {int(m.group(3))} | {int(g) for g, _ in _GROUP.findall(m.group(5) or "")}
    return RestoreUser(m.group(2), int(m.group(1)), frozenset(gids))


def parse_ownership(sections: dict[str, Section]) -> Ownership:
    return Ownership(
        parse_modes(need(sections, "archive_perms")),
        parse_restore_user(need(sections, "restore_user")),
    )
