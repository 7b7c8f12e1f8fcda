#!/usr/bin/env bash
# Configures and builds provp into build/ (ccache, -j2 by default: LibTorch
# headers are heavy and CI has 2 cores). Extra arguments go to cmake.
# PROVP_BUILD_DIR, PROVP_BUILD_TYPE (default Release) and PROVP_JOBS override.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${PROVP_BUILD_DIR:-build}"
JOBS="${PROVP_JOBS:-2}"
# Let clones in other folders (CI) reuse the cache: paths under the checkout
# are hashed relative to it, and the working directory is not hashed.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${PROVP_BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
