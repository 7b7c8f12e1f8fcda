#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds, and runs every
# CTest suite (unit, parity, integration, e2e; gpu tests skip without CUDA),
# then the fuzz targets for a short fixed run (scripts/fuzz.sh, clang build
# in build-fuzz/). Pass ctest arguments to narrow it down, e.g.
# `scripts/test.sh -L unit` (then the fuzzers are skipped);
# PROVP_SKIP_FUZZ=1 skips them too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(
  cd "${PROVP_BUILD_DIR:-build}"
  ctest --output-on-failure -j"${PROVP_TEST_JOBS:-2}" --timeout 1200 "$@"
)
if [ "$#" -eq 0 ] && [ "${PROVP_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
