#!/bin/bash
# breaks: PostgreSQL is stopped.
# observe: systemctl is-active postgresql@15-main is inactive; nothing listens on 5432.
set -euo pipefail
systemctl stop postgresql@15-main.service
