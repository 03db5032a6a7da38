#!/bin/bash
# breaks: archive_timeout is switched off (0): on a quiet server a segment can stay unarchived for
#   hours, far beyond the RPO.
# observe: SHOW archive_timeout is 0; archiving itself still works.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET archive_timeout = 0" -c "SELECT pg_reload_conf()" >/dev/null
