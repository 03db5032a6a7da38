# control: WG-DIR-001
# changes: creates the archive directory $WG_ARCHIVE_DIR with the policy's owner, group and mode
#   (mounting its volume first when /etc/fstab names one); refuses to create it on the root
#   filesystem when the policy requires a dedicated volume and none is named.
# disruptive: no (mkdir, mount, chown, chmod)
if [ ! -d "$WG_ARCHIVE_DIR" ]; then
  if [ -e "$WG_ARCHIVE_DIR" ]; then
    die "$WG_ARCHIVE_DIR exists but is not a directory; not touching it"
  fi
  if [ "${WG_REQUIRE_MOUNT:-yes}" = yes ] && ! findmnt --fstab -n -- "$WG_ARCHIVE_DIR" >/dev/null 2>&1; then
    die "the archive volume for $WG_ARCHIVE_DIR is not mounted and /etc/fstab names none: creating the directory on the root filesystem is not a fix (WAL would fill /); mount the volume"
  fi
  change "mkdir $WG_ARCHIVE_DIR" mkdir -p -- "$WG_ARCHIVE_DIR"
  if findmnt --fstab -n -- "$WG_ARCHIVE_DIR" >/dev/null 2>&1; then
    change "mount $WG_ARCHIVE_DIR (from /etc/fstab)" mount -- "$WG_ARCHIVE_DIR"
  fi
  change "chown $WG_OWNER:$WG_GROUP $WG_ARCHIVE_DIR" chown -- "$WG_OWNER:$WG_GROUP" "$WG_ARCHIVE_DIR"
  change "chmod $WG_DIR_MODE $WG_ARCHIVE_DIR" chmod -- "$WG_DIR_MODE" "$WG_ARCHIVE_DIR"
fi
finish
