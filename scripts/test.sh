#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds, and runs every
# CTest suite (unit, parity, integration, e2e; gpu tests skip without CUDA),
# then the fuzz targets for a short fixed run (scripts/fuzz.sh, clang build
# in build-fuzz/). Pass ctest arguments to narrow it down, e.g.
# `scripts/test.sh -L unit` (then the fuzzers are skipped);
# PROVP_SKIP_FUZZ=1 skips them too.
# Then in CI (CI=true) where nvcc is installed, scripts/cuda-build.sh
# compiles the CUDA code paths against PyPI's torch==2.11.0 so they do not
# rot; PROVP_CUDA_BUILD=1 asks for it anywhere, PROVP_CUDA_BUILD=0 skips it.
# A local run does not download the wheel (a few GB) unless asked.
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
cuda_build="${PROVP_CUDA_BUILD:-auto}"
nvcc="${CUDACXX:-/usr/local/cuda/bin/nvcc}"
if [[ $cuda_build == 1 || ($cuda_build == auto && ${CI:-} == true && -x $nvcc) ]]; then
  bash scripts/cuda-build.sh
elif [[ $cuda_build == auto ]]; then
  echo "test.sh: CUDA code paths not compiled (CI=true with nvcc, or PROVP_CUDA_BUILD=1, runs scripts/cuda-build.sh)"
fi
