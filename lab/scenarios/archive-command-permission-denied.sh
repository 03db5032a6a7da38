#!/bin/bash
# breaks: the archive directory loses its owner write bit (mode 0550), so the archive_command's cp
#   fails with "Permission denied" (the nspawn stand-in for the seed's SELinux denial).
# observe: after pg_switch_wal() the archiver fails: pg_stat_archiver.failed_count rises,
#   last_failed_wal is set, and the PostgreSQL log (/var/log/postgresql/postgresql-15-main.log)
#   shows "cp: cannot create regular file ...: Permission denied".
set -euo pipefail
chmod 0550 /pg_archive
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT txid_current()" -c "SELECT pg_switch_wal()" >/dev/null
