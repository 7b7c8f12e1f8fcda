#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds, and runs every
# CTest suite (unit, parity, integration, e2e; gpu tests skip without CUDA).
# Pass ctest arguments to narrow it down, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd "${PROVP_BUILD_DIR:-build}"
ctest --output-on-failure -j"${PROVP_TEST_JOBS:-2}" --timeout 1200 "$@"
