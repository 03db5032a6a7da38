#!/bin/bash
# breaks: the NTP client (chronyd) is stopped and disabled.
# observe: systemctl is-active chrony says inactive; chronyc tracking cannot talk to the daemon.
set -euo pipefail
systemctl disable --now chrony.service 2>/dev/null
