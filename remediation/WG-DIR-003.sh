# control: WG-DIR-003
# changes: chown of the archive directory itself (not its contents) to $WG_OWNER:$WG_GROUP.
# disruptive: no (chown)
[ -d "$WG_ARCHIVE_DIR" ] || die "$WG_ARCHIVE_DIR is not a directory"
current=$(stat -c '%U:%G' -- "$WG_ARCHIVE_DIR")
if [ "$current" != "$WG_OWNER:$WG_GROUP" ]; then
  change "chown $WG_OWNER:$WG_GROUP $WG_ARCHIVE_DIR (was $current)" \
    chown -- "$WG_OWNER:$WG_GROUP" "$WG_ARCHIVE_DIR"
fi
finish
