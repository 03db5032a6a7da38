#!/bin/bash
# breaks: the archive filesystem is filled to the last block by a root-owned file.
# observe: df /pg_archive shows 0 bytes available (100% used); after pg_switch_wal() the archiver
#   fails with "No space left on device" (failed_count rises).
# may-fail: WG-ACT-002 WG-ACT-004 WG-ACT-007 WG-RST-001: once a switch is attempted on the full
#   volume, the copy that failed leaves a partial segment behind (the newest base backup's WAL
#   while no switch has come since: pg_verifybackup cannot read it).
set -euo pipefail
avail=$(df --output=avail -B1 /pg_archive | tail -n 1 | tr -d ' ')
fallocate -l "$avail" /pg_archive/.walguard-lab-fill 2>/dev/null || true
# fallocate leaves the odd block for metadata: top up until the filesystem refuses.
dd if=/dev/zero of=/pg_archive/.walguard-lab-fill-2 bs=64k status=none 2>/dev/null || true
sync
