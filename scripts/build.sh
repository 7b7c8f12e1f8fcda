#!/usr/bin/env bash
# Configures and builds provp into build/ (ccache, -j2 by default: LibTorch
# headers are heavy and CI has 2 cores). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${PROVP_BUILD_DIR:-build}"
JOBS="${PROVP_JOBS:-2}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${PROVP_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
