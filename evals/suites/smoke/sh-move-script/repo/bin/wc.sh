#!/usr/bin/env bash
# Prints the number of lines of each file given.
set -eu

for file in "$@"; do
    lines=$(wc -l < "$file")
    echo "$file $lines"
done
