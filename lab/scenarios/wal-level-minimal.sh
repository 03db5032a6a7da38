#!/bin/bash
# breaks: wal_level is lowered to minimal and PostgreSQL restarted. PostgreSQL refuses minimal
#   while archiving or WAL senders are on, so archive_mode goes off and max_wal_senders to 0 with it.
# observe: SHOW wal_level is minimal; SHOW archive_mode is off.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 \
  -c "ALTER SYSTEM SET wal_level = minimal" \
  -c "ALTER SYSTEM SET archive_mode = off" \
  -c "ALTER SYSTEM SET max_wal_senders = 0" >/dev/null
systemctl restart postgresql@15-main.service
