#!/usr/bin/env bash
# Prints a greeting for each name given.
# Usage: greet.sh NAME...
set -eu

for name in "$@"; do
    echo "Hello, $name!"
done
