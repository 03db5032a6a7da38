#!/bin/bash
# breaks: the dedicated archive volume is replaced by a bind mount of a directory on the root
#   filesystem: the archived segments are copied to /var/lib/pg_archive_on_root (postgres, 0750),
#   the volume is unmounted, and that directory is bind-mounted on /pg_archive. /pg_archive is
#   still a mount point and looks intact, but archiving fills /.
# observe: mountpoint -q /pg_archive succeeds, yet stat -L -c %d /pg_archive equals stat -c %d /
#   (the same device as the root filesystem) and findmnt shows the root filesystem's type, not
#   ext4; the segments are all there; archiving still works.
set -euo pipefail
onroot=/var/lib/pg_archive_on_root
install -d -o postgres -g postgres -m 0750 "$onroot"
find /pg_archive -mindepth 1 -maxdepth 1 ! -name lost+found -exec cp -a -t "$onroot" -- {} +
umount /pg_archive
mount --bind "$onroot" /pg_archive
