#!/bin/bash
# breaks: the server binary is replaced on disk while PostgreSQL runs (as a package upgrade does):
#   the running postmaster's executable is a deleted file.
# observe: readlink /proc/MAINPID/exe ends in " (deleted)".
set -euo pipefail
bin=/usr/lib/postgresql/15/bin/postgres
cp -p "$bin" "$bin.walguard-lab-new"
mv -f "$bin.walguard-lab-new" "$bin"
