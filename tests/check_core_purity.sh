#!/usr/bin/env bash
# The scheduler core must stay pure (DESIGN.md): no sockets, no files, no
# clock, no unseeded randomness, no globals. This fails the suite when a core
# file includes an I/O library or calls the clock or the file system.
set -u
core=${1:?usage: check_core_purity.sh SCHEDULER_CORE_DIR}
status=0
# Read the code without its comments (the preprocessor drops them; with
# -fpreprocessed it expands nothing), so a comment saying "time (ms)" is not
# mistaken for a call.
stripped=$(mktemp -d)
trap 'rm -rf "$stripped"' EXIT
for f in "$core"/*.c "$core"/*.h; do
  ${CC:-cc} -fpreprocessed -dD -E -P "$f" 2>/dev/null > "$stripped/$(basename "$f")" ||
    cp "$f" "$stripped/$(basename "$f")"
done
check() { # pattern, what
  if hits=$(cd "$stripped" && grep -nE "$1" ./*.c ./*.h); then
    echo "not pure: $2:"
    echo "$hits"
    status=1
  fi
}
check '#include[[:space:]]*<(zmq|sqlite3|curl/curl|hwloc|uuid/uuid|pthread)\.h>' "I/O or thread library included"
check '#include[[:space:]]*"(zsock|fsutil|clock|log)\.h"' "shell helper included"
check '\b(time|clock_gettime|gettimeofday|sleep|usleep|nanosleep|rand|srand|random|fopen|open|read|write|socket|getenv)[[:space:]]*\(' "clock, randomness, file or socket call"
if hits=$(cd "$stripped" && grep -nE '^static[^(]*(=|;)' ./*.c | grep -v 'const'); then
  echo "not pure: file-scope mutable state:"
  echo "$hits"
  status=1
fi
n=$(ls "$core"/*.c | wc -l)
if [ $status = 0 ]; then echo "1 passed, 0 failed: $n core files are pure"; else echo "0 passed, 1 failed"; fi
exit $status
