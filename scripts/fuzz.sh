#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in their own
# build folder (build-fuzz/, so build/ stays gcc) and runs each one over its
# seed corpus for a fixed number of runs, plus every saved regression input.
# CI runs it from scripts/test.sh; a crash, leak or UBSan report fails it.
#   scripts/fuzz.sh                     # build + short run of every target
#   scripts/fuzz.sh tokenizer safetensors   # only these targets
# PROVP_FUZZ_RUNS (default 2000) sets the runs per target,
# PROVP_FUZZ_BUILD_DIR the build folder, PROVP_JOBS the build parallelism.
# Longer runs by hand: fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${PROVP_FUZZ_BUILD_DIR:-build-fuzz}"
RUNS="${PROVP_FUZZ_RUNS:-2000}"
JOBS="${PROVP_JOBS:-2}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

ALL_TARGETS=(safetensors torch_save torchscript bpe_file hf_vocab tokenizer image_decode image_codecs_agree
             coop_split manifest prompt_set)
for extra in classify_request tuning_request upload_sequence; do
  [ -f "fuzz/${extra}_fuzzer.cc" ] && ALL_TARGETS+=("$extra")
done
TARGETS=("${@:-${ALL_TARGETS[@]}}")

cmake -S . -B "$BUILD_DIR" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROVP_FUZZ=ON -DPROVP_BUILD_TESTS=OFF >/dev/null
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("provp_fuzz_${t}"); done
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${build_targets[@]}"

# LibTorch and OpenBLAS are not instrumented; their one-time allocations
# would be reported as leaks at exit, so leak checking stays on only for
# the torch-free targets. One OpenMP/BLAS thread keeps runs reproducible.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD_DIR/fuzz/provp-fuzz-$t"
  leaks=1
  case "$t" in safetensors | torch_save | torchscript | prompt_set) leaks=0 ;; esac
  mkdir -p "$scratch/$t"
  echo "fuzz: $t ($RUNS runs)"
  # Saved crash inputs first: each must now pass (fuzz/regressions/<target>/).
  if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    if ! ASAN_OPTIONS="detect_leaks=$leaks" "$bin" -runs=1 "fuzz/regressions/$t"/* \
        >"$scratch/$t.regress.log" 2>&1; then
      tail -40 "$scratch/$t.regress.log"; failed+=("$t (regression input)"); continue
    fi
  fi
  # New inputs go to the scratch corpus, never into the repository.
  if ! ASAN_OPTIONS="detect_leaks=$leaks" "$bin" -runs="$RUNS" -seed=1 -timeout=25 \
      -rss_limit_mb=4096 -max_len=65536 -artifact_prefix="$scratch/$t-" \
      "$scratch/$t" "fuzz/corpus/$t" >"$scratch/$t.log" 2>&1; then
    tail -40 "$scratch/$t.log"
    mkdir -p fuzz/artifacts && cp "$scratch/$t"-* fuzz/artifacts/ 2>/dev/null || true
    failed+=("$t")
    continue
  fi
  grep -E "^#[0-9]+ +DONE|Done [0-9]+ runs" "$scratch/$t.log" | tail -2
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (crash inputs copied to fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets passed"
