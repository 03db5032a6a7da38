# control: WG-ACT-008
# changes: for each archived segment and history file (regular files only; links are never
#   followed) that is not $WG_OWNER:$WG_GROUP's, is writable by group or others, or that
#   $WG_RESTORE_USER cannot read: chown to $WG_OWNER:$WG_GROUP, then drop the group/other write
#   bits and add the read bit the restore user reads by (owner, or group when it is another user
#   of the archive's group).
# disruptive: no (chown, chmod of archived files)
# refuses: when the archive owner, its group or the restore user is unknown on the host, or the
#   restore user is neither the archive owner nor in its group (only a decision can say how it
#   should read the archive: widening the files to everyone would let anyone read the WAL), or
#   when the archive holds no segment or history file at all (their absence, WG-ACT-005/007's
#   finding, is no owner or mode to fix).
[ -d "$WG_ARCHIVE_DIR" ] || die "$WG_ARCHIVE_DIR is not a directory"
id -u -- "$WG_OWNER" >/dev/null 2>&1 ||
  die "the archive owner $WG_OWNER is not a user on this host: who should own the archive is unknown"
getent group -- "$WG_GROUP" >/dev/null 2>&1 ||
  die "the archive group $WG_GROUP is not a group on this host"
restore=${WG_RESTORE_USER:-$WG_OWNER}
id -u -- "$restore" >/dev/null 2>&1 || die "the restore user $restore is not a user on this host"
read_bit=0400
if [ "$restore" != "$WG_OWNER" ] && [ "$(id -u -- "$restore")" != 0 ]; then
  id -nG -- "$restore" | tr ' ' '\n' | grep -qxF -- "$WG_GROUP" ||
    die "the restore user $restore is neither the archive owner $WG_OWNER nor in its group $WG_GROUP"
  read_bit=0440
fi
found=$(find "$WG_ARCHIVE_DIR" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended \
  -regex '.*/([0-9A-F]{24}|[0-9A-F]{8}\.history)' -print -quit)
[ -n "$found" ] || die "$WG_ARCHIVE_DIR holds no archived segment or history file: their absence is no owner or mode to fix (WG-ACT-005/007 say why)"
while IFS= read -r -d '' f; do
  owner=$(stat -c '%U:%G' -- "$f")
  if [ "$owner" != "$WG_OWNER:$WG_GROUP" ]; then
    change "chown $WG_OWNER:$WG_GROUP $f (was $owner)" chown -h -- "$WG_OWNER:$WG_GROUP" "$f"
  fi
  mode=$(stat -c '%a' -- "$f")
  want=$(printf '%o' $(( (8#$mode | read_bit) & ~8#022 )))
  if [ "$mode" != "$want" ]; then
    # Only regular files: a file swapped for a link meanwhile is left alone (chmod follows links).
    change "chmod $want $f (was $mode)" \
      find "$f" -maxdepth 0 -type f -exec chmod -- "$want" {} +
  fi
done < <(find "$WG_ARCHIVE_DIR" -mindepth 1 -maxdepth 1 -type f -regextype posix-extended \
  -regex '.*/([0-9A-F]{24}|[0-9A-F]{8}\.history)' -print0 | sort -z)
finish
