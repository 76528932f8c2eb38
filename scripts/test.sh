#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror, run
# every test (unit and integration, ctest), then build again with
# AddressSanitizer + UndefinedBehaviorSanitizer and run every test again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

echo "== build and test (warnings are errors)"
BUILD_DIR=build scripts/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 300

echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
BUILD_DIR=build-asan scripts/build.sh -DMUSTER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2 --timeout 600
