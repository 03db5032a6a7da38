#!/bin/bash
# breaks: a drop-in for the PostgreSQL unit is written without systemctl daemon-reload.
# observe: systemctl show -p NeedDaemonReload postgresql@15-main.service says yes.
set -euo pipefail
mkdir -p /etc/systemd/system/postgresql@.service.d
printf '[Service]\n# walguard lab: a change nobody activated\nTimeoutStopSec=120\n' \
  > /etc/systemd/system/postgresql@.service.d/50-walguard-lab-change.conf
