#!/usr/bin/env bash
# Reproduces the quality table in docs/quality.md: prepares the built-in
# model and demo datasets (cached after the first run), then runs every
# variant in both settings over 3 seeds. Extra arguments go to the bench
# (e.g. --seeds 1 --shots 1,16 for a quick look).
#   BUILD=build-dir DATA=data-dir OUT=out-dir bench/quality/run.sh
# OpenBLAS mistakes this machine's AVX-512 Xeon for a Prescott and runs its
# SSE3 kernels; forcing the core type halves the CPU time.
set -euo pipefail
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DATA=${DATA:-${HOME}/.cache/provp/builtin}
OUT=${OUT:-${BUILD}/quality}
"${BUILD}/tools/provp_builtin/provp-builtin" prepare --data-dir "${DATA}"
"${BUILD}/bench/quality/provp-quality-bench" --data-dir "${DATA}" --out "${OUT}" "$@"
echo "table: ${OUT}/quality_table.md  plots: ${OUT}/*.png" >&2
