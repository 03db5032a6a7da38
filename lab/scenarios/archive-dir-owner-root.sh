#!/bin/bash
# breaks: the archive directory is owned by root:root (mode unchanged, 0750).
# observe: stat -c %U:%G /pg_archive shows root:root; postgres can no longer write there, so the
#   next segment fails to archive (failed_count rises).
# may-fail: WG-ACT-002: the archiver's next attempt fails: postgres cannot write there.
set -euo pipefail
chown root:root /pg_archive
