#!/bin/bash
# breaks: the newest archived segment is overwritten (same name, same 16 MiB size, same owner and
#   mode) by a segment of another cluster: the first WAL segment of a throw-away cluster made
#   with initdb in a temporary directory (and removed again), so its page header carries a
#   different database system identifier.
# observe: the newest 24-hex file in /pg_archive is a regular 16 MiB file whose WAL header
#   (8 bytes at offset 24, xlp_sysid) differs from pg_control_system().system_identifier;
#   archiving still works.
# may-fail: WG-RST-001: while the overwritten segment holds the newest base backup's WAL,
#   pg_verifybackup finds a foreign system identifier in it.
set -euo pipefail
newest=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 1)
[ -n "$newest" ] || { echo "no archived segment in /pg_archive" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/walguard-lab-foreign.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT
chown postgres:postgres "$tmp"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb --no-sync --no-instructions -A trust \
  --wal-segsize=16 -D "$tmp/data" >/dev/null
foreign=$(find "$tmp/data/pg_wal" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | sort | head -n 1)
[ -n "$foreign" ] || { echo "initdb left no WAL segment" >&2; exit 1; }
target="/pg_archive/$newest"
cp -- "$foreign" "$target.walguard-lab"
chown --reference="$target" -- "$target.walguard-lab"
chmod --reference="$target" -- "$target.walguard-lab"
mv -f -- "$target.walguard-lab" "$target"
echo "overwrote $newest with $(basename "$foreign") of a throw-away cluster"
