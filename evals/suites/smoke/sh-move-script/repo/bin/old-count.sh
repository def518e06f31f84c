#!/bin/sh
# Deprecated: use bin/wc.sh.
cat "$@" | wc -l
