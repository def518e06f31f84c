#!/usr/bin/env bash
# Hidden check: backs up names with spaces into a folder with a space in its name.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'one\n' > "$work/my notes.txt"
printf 'two\n' > "$work/plain.txt"
output=$(BACKUP_DIR="$work/back up" bash scripts/backup.sh "$work/my notes.txt" "$work/plain.txt")
test "$(cat "$work/back up/my notes.txt.bak")" = one
test "$(cat "$work/back up/plain.txt.bak")" = two
test "$output" = "backed up 2 file(s) to $work/back up"
echo "backup.sh handles spaces"
