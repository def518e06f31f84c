#!/usr/bin/env bash
# Hidden check: the renamed script, its TOTAL line, the removed files, the README.
set -eu
test ! -e bin/wc.sh
test ! -e bin/old-count.sh
test -x bin/count-lines.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'a\nb\n' > "$work/x"
printf 'c\n' > "$work/y"
expected=$(printf '%s\n' "$work/x 2" "$work/y 1" "TOTAL 3")
test "$(bin/count-lines.sh "$work/x" "$work/y")" = "$expected"
grep -q 'bin/count-lines.sh' README.md
! grep -q 'wc.sh\|old-count' README.md
echo "count-lines.sh is in place"
