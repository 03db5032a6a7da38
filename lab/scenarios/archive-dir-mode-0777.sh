#!/bin/bash
# breaks: the archive directory becomes world-writable (mode 0777): anyone on the host can
#   replace or delete archived WAL.
# observe: stat -c %a /pg_archive shows 777; archiving still works.
set -euo pipefail
chmod 0777 /pg_archive
