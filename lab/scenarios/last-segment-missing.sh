#!/bin/bash
# breaks: the segment pg_stat_archiver reports as last archived never arrived: it is deleted from
#   /pg_archive (as when a copy tool reports success for a file it did not write).
# observe: pg_stat_archiver.last_archived_wal names a file that ls /pg_archive does not show;
#   the rest of the archive is untouched (no gap: it was the newest).
set -euo pipefail
last=$(runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT last_archived_wal FROM pg_stat_archiver")
rm -f -- "/pg_archive/$last"
echo "removed $last"
