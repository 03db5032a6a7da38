#!/bin/bash
# breaks: the cluster runs but nothing starts it at boot: postgresql.service, which the default
#   target wants and which pulls postgresql@15-main.service in, is disabled (the cluster's own
#   unit still reads enabled-runtime: the generator's link for postgresql.service is there).
# observe: postgresql.service's unit file state is disabled; the cluster is active.
set -euo pipefail
systemctl disable -q postgresql.service
