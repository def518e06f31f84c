#!/usr/bin/env bash
# Copies every file named on the command line into the backup folder
# ($BACKUP_DIR, default ./backup), adding a .bak suffix.
set -eu

dest=${BACKUP_DIR:-backup}
mkdir -p $dest
for file in $@; do
    cp $file $dest/$(basename $file).bak
done
echo "backed up $# file(s) to $dest"
