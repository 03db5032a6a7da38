#!/bin/bash
# breaks: a systemd unit fails (a service whose start command exits 1).
# observe: systemctl --failed lists walguard-lab-broken.service.
# may-fail: WG-SYS-004: systemd logs the failed start at error priority: with no verified earlier
#   run to compare with, WG-SYS-004 sees it as a new error.
set -euo pipefail
cat > /etc/systemd/system/walguard-lab-broken.service <<'UNIT'
[Unit]
Description=walguard lab: a service that fails on purpose
[Service]
Type=oneshot
ExecStart=/bin/false
UNIT
systemctl daemon-reload
systemctl start walguard-lab-broken.service || true
