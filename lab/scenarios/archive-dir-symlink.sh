#!/bin/bash
# breaks: /pg_archive becomes a symbolic link to the real archive directory: the archive volume
#   is mounted at /srv/pg_archive_vol instead (bind-mounted there, then unmounted from
#   /pg_archive: the container cannot open the loop device itself), the mount point is removed
#   and replaced by the link /pg_archive -> /srv/pg_archive_vol. archive_command is unchanged
#   and keeps working through the link.
# observe: readlink /pg_archive is /srv/pg_archive_vol; findmnt /srv/pg_archive_vol is ext4; the
#   segments are in /srv/pg_archive_vol, and after pg_switch_wal() the new segment arrives
#   there (failed_count stays 0).
set -euo pipefail
vol=/srv/pg_archive_vol
install -d -o postgres -g postgres -m 0750 "$vol"
mount --bind /pg_archive "$vol"
umount /pg_archive
rmdir /pg_archive
ln -s "$vol" /pg_archive
