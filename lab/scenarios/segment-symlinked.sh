#!/bin/bash
# breaks: the newest archived segment is replaced by a symbolic link to a copy of itself outside
#   the archive volume (/var/tmp/walguard-lab-segments/NAME, on the root filesystem): the archive
#   holds a pointer, not the segment.
# observe: the newest 24-hex entry in /pg_archive is a symlink (find -type l) whose target is a
#   regular 16 MiB file under /var/tmp/walguard-lab-segments; archiving still works.
# may-fail: WG-RST-001: a symlink is not an archived segment, so the backup's WAL chain has a
#   hole at it.
set -euo pipefail
newest=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 1)
[ -n "$newest" ] || { echo "no archived segment in /pg_archive" >&2; exit 1; }
elsewhere=/var/tmp/walguard-lab-segments
install -d -o postgres -g postgres -m 0750 "$elsewhere"
cp -p -- "/pg_archive/$newest" "$elsewhere/$newest"
ln -sfn -- "$elsewhere/$newest" "/pg_archive/$newest"
chown -h postgres:postgres -- "/pg_archive/$newest"
echo "replaced $newest by a symlink to $elsewhere/$newest"
