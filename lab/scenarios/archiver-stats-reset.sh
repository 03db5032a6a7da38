#!/bin/bash
# breaks: the archiver statistics are reset, as after pg_stat_reset_shared('archiver'): nothing
#   has been archived as far as pg_stat_archiver can tell.
# observe: pg_stat_archiver shows archived_count 0 and no last_archived_wal; the files in
#   /pg_archive are untouched.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT pg_stat_reset_shared('archiver')" >/dev/null
