#!/usr/bin/env bash
# Hidden check for the -u option of greet.sh.
set -eu
test "$(bash greet.sh ann bob)" = "$(printf 'Hello, ann!\nHello, bob!')"
test "$(bash greet.sh -u ann bob)" = "$(printf 'HELLO, ANN!\nHELLO, BOB!')"
test -z "$(bash greet.sh)"
grep -q -- '-u' <(head -n 5 greet.sh)
echo "greet.sh -u works"
