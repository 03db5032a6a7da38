#!/bin/bash
# breaks: nothing is broken: a standby (standby-of-db1, its base) is promoted
#   (pg_promote()): it leaves recovery on timeline 2, archives 00000002.history (and the old
#   timeline's last segment as NAME.partial) into its own /pg_archive with its unchanged
#   archive_command, and after a WAL switch a first whole timeline-2 segment.
# observe: pg_is_in_recovery() is false; pg_walfile_name(pg_current_wal_lsn()) starts with
#   00000002; /pg_archive holds 00000002.history and a whole 00000002... segment.
# base: standby-of-db1
set -euo pipefail
q() { runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
if [ "$(q "SELECT pg_is_in_recovery()")" != t ]; then
  echo "not a standby: apply standby-of-db1 first" >&2
  exit 1
fi
q "SELECT pg_promote(true, 60)" >/dev/null
tli=$(q "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
q "SELECT txid_current()" >/dev/null
q "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 1 1200); do
  last=$(q "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
  case "$last" in
    "$tli"????????????????) [ -f "/pg_archive/$tli.history" ] && [ -f "/pg_archive/$last" ] && break ;;
  esac
  sleep 0.1
done
if [ ! -f "/pg_archive/$tli.history" ] || [ ! -f "/pg_archive/$last" ] || [ "${last:0:8}" != "$tli" ]; then
  echo "timeline $tli: history file or first segment not archived (last archived: $last)" >&2
  exit 1
fi
echo "promoted to timeline $tli; archived $tli.history and $last"
