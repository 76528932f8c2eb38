#!/usr/bin/env bash
# Build muster into BUILD_DIR (default build/) with warnings as errors.
# Extra arguments go to cmake's configure step (e.g. -DMUSTER_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -DMUSTER_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
