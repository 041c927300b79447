#!/usr/bin/env bash
# The whole test suite in one command (CI runs exactly this through .ci/run):
#   1. installs what is missing (Debian packages, npm packages for the browser tests),
#   2. builds Release and runs every test with ctest (unit, integration against real
#      redis-server / Redis Cluster / RocksDB, browser tests in headless Chromium),
#   3. builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again.
# Exits non-zero if any test fails. Set GIMEL_SKIP_SANITIZE=1 to skip step 3 locally.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="$(nproc)"
"$root/scripts/setup.sh"

echo "== Release build and tests"
"$root/scripts/build.sh" "$root/build"
(cd "$root/build" && ctest --output-on-failure -j "$jobs" --timeout 600)

if [[ "${GIMEL_SKIP_SANITIZE:-0}" != 1 ]]; then
  echo "== ASan/UBSan build and tests"
  "$root/scripts/build.sh" "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGIMEL_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$root/build-asan" && ctest --output-on-failure -j "$jobs" --timeout 900 -LE "browser|style")
fi
echo "== all tests passed"
