#!/bin/bash
# breaks: the archive directory is gone: the volume is unmounted and its mount point removed.
# observe: stat /pg_archive fails (No such file or directory); the next archive attempt fails.
# may-fail: WG-ACT-002: the archiver's next attempt fails once the directory is gone.
set -euo pipefail
umount /pg_archive
rmdir /pg_archive
