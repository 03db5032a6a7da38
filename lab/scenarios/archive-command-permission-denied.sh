#!/bin/bash
# breaks: PostgreSQL is denied access to /pg_archive by a mandatory rule outside the file modes
#   (a systemd InaccessiblePaths= sandbox on the service), so archive_command's cp fails with
#   "Permission denied" while owner and mode still look right: the nspawn stand-in for the seed's
#   SELinux denial.
# observe: stat /pg_archive still shows postgres:postgres 750; after pg_switch_wal() the archiver
#   fails: pg_stat_archiver.failed_count rises, and the PostgreSQL log
#   (/var/log/postgresql/postgresql-15-main.log) shows "cp: cannot stat ...: Permission denied".
# wait: archiver-failure (the archiver records the failure only at its next attempt).
set -euo pipefail
dropin=/run/systemd/system/postgresql@15-main.service.d
mkdir -p "$dropin"
printf '[Service]\nInaccessiblePaths=/pg_archive\n' > "$dropin/50-walguard-lab-deny-archive.conf"
systemctl daemon-reload
systemctl restart postgresql@15-main.service
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT txid_current()" -c "SELECT pg_switch_wal()" >/dev/null
