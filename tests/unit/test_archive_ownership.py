"""WG-ACT-008's facts: who owns each archived file, its mode, and who the restore runs as,
parsed from a lab host's real collector sections (db1 after `segment-root-owned`: the newest
segment root's with mode 0600), and judged as recovery would meet them."""

from __future__ import annotations

from pathlib import Path

import pytest

from walguard.errors import FactUnavailable
from walguard.facts.archive_ownership import (
    FileMode,
    parse_modes,
    parse_ownership,
    parse_restore_user,
)
from walguard.facts.sections import Section

DATA = Path(__file__).parent / "data" / "archive-ownership-root-owned.txt"


def captured() -> dict[str, Section]:
    sections: dict[str, Section] = {}
    for part in DATA.read_text().split("@@ ")[1:]:
        head, _, body = part.partition("\n")
        name, rc = head.split()
        sections[name] = Section(name, body.rstrip("\n"), int(rc))
    return sections


def test_a_root_owned_0600_segment_cannot_be_read_by_the_restore_user() -> None:
    own = parse_ownership(captured())
    assert own.restore.name == "postgres" and own.restore.uid == 102
    assert own.restore.gids == frozenset({105, 102})
    root_owned = own.files["000000010000000000000002"]
    assert (root_owned.owner, root_owned.mode) == ("root", 0o600)
    assert not own.restore.can_read(root_owned)
    assert own.restore.can_read(own.files["000000010000000000000001"])


@pytest.mark.parametrize(
    ("uid", "gid", "mode", "readable"),
    [
        (102, 105, 0o400, True),  # the restore user's own file
        (102, 105, 0o040, False),  # its own file, but the owner bit is off
        (0, 105, 0o640, True),  # root's, readable by the group postgres is in
        (0, 0, 0o640, False),  # root's group, not postgres's
        (0, 0, 0o604, True),  # readable by everyone
    ],
)
def test_readable_by_owner_group_or_others_as_the_kernel_decides(
    uid: int, gid: int, mode: int, readable: bool
) -> None:
    restore = parse_restore_user(captured()["restore_user"])
    assert restore.can_read(FileMode("f", "x", "y", uid, gid, mode)) is readable


def test_an_unknown_restore_user_or_unreadable_listing_is_an_error() -> None:
    unknown = Section("restore_user", "id: 'pgrestore': no such user", 1)
    with pytest.raises(FactUnavailable, match="the restore user is unknown on the host"):
        parse_restore_user(unknown)
    with pytest.raises(FactUnavailable):
        parse_modes(Section("archive_perms", "find: '/pg_archive': Permission denied", 1))
    with pytest.raises(FactUnavailable, match="unparsable archive owner line"):
        parse_modes(Section("archive_perms", "000000010000000000000001|postgres|x|y|600", 0))
