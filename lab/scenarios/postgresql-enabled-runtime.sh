#!/bin/bash
# breaks: postgresql.service is enabled only until the next reboot (its link is under /run).
# observe: postgresql.service's unit file state is enabled-runtime; the cluster is active.
set -euo pipefail
systemctl disable -q postgresql.service
systemctl enable -q --runtime postgresql.service
