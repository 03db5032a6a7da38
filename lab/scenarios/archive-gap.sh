#!/bin/bash
# breaks: one archived segment in the middle of the sequence disappears (a gap in the archive).
# observe: three new segments are archived, then the middle one of the newest three is deleted:
#   ls /pg_archive shows the hole; the last archived segment is still there.
set -euo pipefail
q() { runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
for _ in 1 2 3; do
  before=$(q "SELECT archived_count FROM pg_stat_archiver")
  q "SELECT txid_current()" >/dev/null
  q "SELECT pg_switch_wal()" >/dev/null
  for _ in $(seq 1 100); do
    [ "$(q "SELECT archived_count FROM pg_stat_archiver")" -gt "$before" ] && break
    sleep 0.1
  done
done
victim=$(find /pg_archive -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 2 | head -n 1)
rm -f -- "/pg_archive/$victim"
echo "removed $victim"
