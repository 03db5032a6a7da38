#!/bin/bash
# breaks: the archiver stalls (its process is stopped with SIGSTOP) while WAL keeps being switched:
#   .ready files pile up in pg_wal/archive_status and nothing reports a failure.
# observe: pg_ls_archive_statusdir() lists 12 or more .ready files; failed_count is unchanged.
set -euo pipefail
pkill -STOP -f '^postgres: 15/main: archiver'
for _ in $(seq 1 12); do
  runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT txid_current()" -c "SELECT pg_switch_wal()" >/dev/null
done
