#!/bin/bash
# breaks: a new error-priority message appears in this boot's journal.
# observe: journalctl -p err -b shows "walguard-lab: simulated I/O error on /dev/sdb".
set -euo pipefail
logger -p daemon.err -t walguard-lab "simulated I/O error on /dev/sdb"
journalctl --sync
