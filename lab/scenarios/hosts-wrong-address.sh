#!/bin/bash
# breaks: /etc/hosts gives the host's own name another host's address (10.231.0.99).
# observe: getent hosts $(hostname) says 10.231.0.99.
set -euo pipefail
name=$(hostname)
sed -i "s/^[0-9.]*\([[:space:]]\+$name\)\$/10.231.0.99\1/" /etc/hosts
