#!/bin/bash
# breaks: the PostgreSQL cluster runs but does not start at boot (start.conf manual: Debian's
#   generator no longer links postgresql@15-main.service under postgresql.service).
# observe: systemctl show -p UnitFileState postgresql@15-main.service says disabled; it is active.
set -euo pipefail
echo manual > /etc/postgresql/15/main/start.conf
systemctl daemon-reload
