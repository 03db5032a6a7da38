# control: WG-DIR-004
# changes: chmod of the archive directory: drops the group/other write bits, or sets the policy's
#   first allowed mode ($WG_DIR_MODE) when the result is still not allowed.
# disruptive: no (chmod)
[ -d "$WG_ARCHIVE_DIR" ] || die "$WG_ARCHIVE_DIR is not a directory"
current=$(stat -c '%04a' -- "$WG_ARCHIVE_DIR")
want=$(printf '%04o' $(( 8#$current & ~8#022 )))
case " $WG_ALLOWED_MODES " in
  *" $want "*) ;;
  *) want=$WG_DIR_MODE ;;
esac
if [ "$current" != "$want" ]; then
  change "chmod $want $WG_ARCHIVE_DIR (was $current)" chmod -- "$want" "$WG_ARCHIVE_DIR"
fi
finish
