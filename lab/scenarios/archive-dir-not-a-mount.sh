#!/bin/bash
# breaks: the dedicated archive volume is unmounted: /pg_archive is a plain directory on the root
#   filesystem, and archiving silently fills /.
# observe: findmnt /pg_archive finds nothing (mountpoint -q fails); the directory still exists,
#   owned by postgres, and new segments land on the root filesystem.
set -euo pipefail
umount /pg_archive
