"""The archive directory: there, on its own volume, owned right, not writable by others, room."""

from __future__ import annotations

from walguard.controls import NotApplicable, control, fail
from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir
from walguard.facts.postgres_state import Postgres
from walguard.policy.model import Policy

REFS = ("BSI APP.4.3.A24", "CIS PostgreSQL 3.1")

# Filesystems that look like a mount point but cannot keep an archive.
VOLATILE = {
    "tmpfs": "archived WAL lives in memory and is lost at the next reboot",
    "ramfs": "archived WAL lives in memory and is lost at the next reboot",
    "devtmpfs": "archived WAL lives in memory and is lost at the next reboot",
    "overlay": "an overlay's upper layer is the host's own disk, often discarded",
    "squashfs": "it is read-only",
}


@control(
    "WG-DIR-001",
    "the archive directory exists and is a directory",
    severity="critical",
    refs=REFS,
    remediation="WG-DIR-001.sh",
    reads=("archive_lstat", "archive_realpath", "archive_stat"),
    scenarios=("archive-dir-missing",),
    rationale="archive_command writes into it; without it every segment fails to archive.",
)
def test_archive_dir_exists(archive: ArchiveDir) -> str | None:
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    if archive.kind != "directory":
        fail(f"{archive.where} is a {archive.kind}, not a directory")
    if archive.is_symlink:
        return f"{archive.where}: every archive control judges {archive.real_path}"
    return None


@control(
    "WG-DIR-002",
    "the archive directory is a dedicated mount",
    severity="high",
    refs=REFS,
    reads=("archive_mount", "root_mount"),
    scenarios=("archive-dir-missing", "archive-dir-not-a-mount"),
    rationale="On the root filesystem, archived WAL can fill / and stop the host; a "
    "dedicated volume is sized, monitored and backed up on its own.",
    detail="the archive directory is its own filesystem: a mount point, not tmpfs/ramfs/overlay, "
    "not read-only, and on another device than / and the data directory (a bind mount from either "
    "fails)",
)
def test_archive_dir_is_dedicated_mount(
    archive: ArchiveDir, policy: Policy, pg: Postgres
) -> str | None:
    if not policy.require_dedicated_mount:
        raise NotApplicable("policy walguard_require_dedicated_mount is false for this host")
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    m, root = archive.mount, archive.root_mount
    if m is None or root is None:
        raise FactUnavailable("the archive's mounts were not read")
    if not archive.is_dedicated_mount:
        fail(
            f"{archive.where} is not a mount point: it lives on {archive.mount_target} "
            f"({archive.mount_source}, {archive.fstype})"
        )
    bind = f" (a bind mount of {m.fsroot})" if m.fsroot != "/" else ""
    if m.device == root.device:
        fail(
            f"{archive.where} is on the root filesystem's device {m.device}{bind}: a full "
            "archive fills / and stops the host"
        )
    data_dir = pg.setting("data_directory").setting
    data = archive.mount_of(data_dir)
    if data is None:
        raise FactUnavailable(f"no mount found for the data directory {data_dir}")
    if m.device == data.device:
        fail(
            f"{archive.where} is on the same filesystem as the data directory {data_dir} "
            f"(device {m.device}){bind}: a full archive stops the database, and one failure "
            "loses both"
        )
    if m.fstype in VOLATILE:
        fail(f"{archive.where} is a {m.fstype} mount: {VOLATILE[m.fstype]}")
    if m.read_only:
        fail(f"{archive.where} is mounted read-only: nothing can be archived there")
    return f"{archive.where}: its own {m.fstype} filesystem {m.source} (device {m.device})"


@control(
    "WG-DIR-003",
    "the archive directory is owned by the expected user and group",
    severity="high",
    refs=REFS,
    remediation="WG-DIR-003.sh",
    reads=("archive_stat",),
    scenarios=("archive-dir-missing", "archive-dir-owner-root"),
    rationale="PostgreSQL must be able to write there, and nobody else should own it.",
)
def test_archive_dir_owner(archive: ArchiveDir, policy: Policy) -> None:
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    want = f"{policy.archive_owner}:{policy.archive_group}"
    got = f"{archive.owner}:{archive.group}"
    if got != want:
        fail(f"{archive.where} is owned by {got}, expected {want}")


@control(
    "WG-DIR-004",
    "the archive directory has no group/other write bit and an allowed mode",
    severity="high",
    refs=REFS,
    remediation="WG-DIR-004.sh",
    reads=("archive_stat",),
    scenarios=("archive-dir-missing", "archive-dir-mode-0777"),
    rationale="Anyone who can write there can delete or replace archived WAL.",
    detail="no group/other write bit, and a mode the policy allows",
)
def test_archive_dir_mode(archive: ArchiveDir, policy: Policy) -> None:
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    mode = f"{archive.mode:04o}"
    if archive.mode & 0o022:
        fail(f"{archive.where} has mode {mode}: group or others can write")
    if mode not in policy.archive_allowed_modes:
        fail(f"{archive.path} has mode {mode}, allowed: {', '.join(policy.archive_allowed_modes)}")


@control(
    "WG-DIR-005",
    "the archive filesystem has free space above the threshold",
    severity="high",
    refs=REFS,
    reads=("archive_df",),
    scenarios=("archive-dir-missing", "archive-fs-full"),
    rationale="A full archive volume makes every archive attempt fail; WAL then piles up "
    "in pg_wal until the database itself stops.",
    detail="free space on the archive filesystem above the threshold",
)
def test_archive_free_space(archive: ArchiveDir, policy: Policy) -> None:
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    if archive.size_bytes <= 0:
        fail(f"{archive.path}: filesystem size reported as 0")
    free_pct = 100 * archive.avail_bytes / archive.size_bytes
    if free_pct < policy.archive_min_free_percent:
        fail(
            f"{archive.path} has {free_pct:.1f}% free ({archive.avail_bytes // 2**20} MiB), "
            f"below the {policy.archive_min_free_percent}% threshold"
        )
