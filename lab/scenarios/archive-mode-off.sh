#!/bin/bash
# breaks: archive_mode is switched off and PostgreSQL restarted: nothing is archived any more.
# observe: SHOW archive_mode is off; no pending restart; new segments never reach /pg_archive.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET archive_mode = off" >/dev/null
systemctl restart postgresql@15-main.service
