#!/bin/bash
# breaks: archive_command loses its overwrite guard: a plain cp that replaces archived segments.
# observe: SHOW archive_command is 'cp %p /pg_archive/%f' (no test -f guard); archiving still works.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET archive_command = 'cp %p /pg_archive/%f'" -c "SELECT pg_reload_conf()" >/dev/null
