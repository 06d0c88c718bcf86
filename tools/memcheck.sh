#!/usr/bin/env bash
# valgrind memcheck over a few calls of every public function (tools/memcheck_calls.py).
# Fails when valgrind finds an invalid access or a leak "definitely lost" in a stack that
# goes through fastrnn's _core (CPython's own allocations at exit are not ours).
#   tools/memcheck.sh            # uses the python on PATH with fastrnn installed
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PYTHONMALLOC=malloc OMP_NUM_THREADS=1 valgrind --tool=memcheck --leak-check=full \
    --errors-for-leak-kinds=definite --num-callers=30 --log-file="$log" \
    python tools/memcheck_calls.py
grep -E "ERROR SUMMARY|definitely lost" "$log"
# Errors (invalid reads/writes, uses of uninitialised values) with _core in the stack.
bad=$(awk '/^==[0-9]+== [A-Z]/ {blk=""} {blk=blk"\n"$0} /^==[0-9]+== $/ {if (blk ~ /fastrnn\/_core\.cpython/ && blk ~ /(Invalid|uninitialised|definitely lost)/) print blk; blk=""}' "$log")
if [[ -n $bad ]]; then
    echo "$bad"
    echo "memcheck.sh: errors or definite leaks in fastrnn (above)" >&2
    exit 1
fi
echo "memcheck.sh: no invalid access and no definite leak in fastrnn"
