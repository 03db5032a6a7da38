#!/bin/bash
# breaks: PostgreSQL listens on every address (listen_addresses = '*') instead of loopback and
#   its own lab address.
# observe: ss -tlnp shows postgres on 0.0.0.0:5432 and [::]:5432.
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET listen_addresses = '*'" >/dev/null
systemctl restart postgresql@15-main.service
