#!/usr/bin/env bash
# Runs on the GPU host (see docs/gpu.md): builds the LibTorch-only targets
# against the Python torch's LibTorch (2.x + CUDA) and the carried Debian
# libraries, runs the unit/parity/gpu suites, then the benchmarks next to a
# same-run PyTorch baseline. Results go to $OUT (or out/gpu).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT="${OUT:-$PWD/out/gpu}"
mkdir -p "$OUT"
CARRY=$PWD/.gpu-carry
DEPS=$CARRY/deps/usr
export LD_LIBRARY_PATH="$DEPS/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export PROVP_SHARED_DIR=$CARRY/shared
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/gpu.txt"
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# torch/ itself first, so find_library takes the wheel's libtorch (a host
# with a system LibTorch would otherwise win).
TORCH_ROOT=$(dirname "$(dirname "$TORCH_PREFIX")")
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
BUILD=/tmp/provp-gpu-build
t0=$(date +%s)
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DPROVP_TORCH_ONLY=ON -DPROVP_BUILD_TESTS=ON \
  -DPROVP_SHARED_DIR="$PROVP_SHARED_DIR" \
  -DCMAKE_PREFIX_PATH="$TORCH_ROOT;$TORCH_PREFIX;$DEPS;$DEPS/lib/x86_64-linux-gnu/cmake;$DEPS/share/cmake" \
  > "$OUT/cmake.log" 2>&1 || { log "configure failed"; tail -40 "$OUT/cmake.log"; exit 1; }
# Keep going past a failing target so the rest still gets measured.
cmake --build $BUILD -j16 -- -k > "$OUT/build.log" 2>&1 || { log "build had errors"; grep -E "error" -A4 "$OUT/build.log" | head -60; }
log "configure+build $(( $(date +%s) - t0 )) s"

(cd $BUILD && ctest -L 'gpu|parity|unit' --output-on-failure -j8 --timeout 300 > "$OUT/ctest.log" 2>&1)
log "ctest: $(grep -E 'tests passed|tests failed' "$OUT/ctest.log")"
grep -E "^\s+[0-9]+ - .*\((Failed|Exception|Timeout)\)" "$OUT/ctest.log" | tee -a "$OUT/summary.txt"
# Show which gpu tests ran (not skipped).
(cd $BUILD && ctest -L gpu -V 2>&1 | grep -E "OK \]|FAILED|SKIPPED" > "$OUT/gpu-tests.txt")

BENCH=$BUILD/bench
log "baselines (reference-shaped PyTorch fp16 and the same model under torch.compile, same GPU, same run)"
python3 bench/gpu/reference_baseline.py --prompts 50 --infer-batch 1,32,256 --train-batch 32 2>&1 | tee "$OUT/baseline.jsonl"
log "provp clip bench (JSON lines; mixed_sets_forward: 256 images with 256 different prompt sets)"
for args in "--size vit-b16 --device cuda --dtype bf16 --prompts 50 --batch 1,32,256 --mixed-sets 256" \
            "--size vit-b16 --device cuda --dtype fp16 --prompts 50 --batch 256" \
            "--size vit-b16 --device cuda --dtype bf16 --batch 256"; do
  # shellcheck disable=SC2086  # a word list on purpose
  [ -x $BENCH/clip/provp_clip_bench ] && $BENCH/clip/provp_clip_bench $args --image-only --iters 20 --json 2>&1 | tee -a "$OUT/clip_bench.jsonl"
done
log "provp train bench"
# --no-augment matches the baseline's step (it feeds ready tensors); the
# second run includes the on-device augmentation of decoded images.
for extra in "--no-augment" ""; do
  # shellcheck disable=SC2086
  [ -x $BENCH/train/provp_train_bench ] && $BENCH/train/provp_train_bench --size vit-b16 --device cuda \
    --dtype bf16 --prompts 50 --batch 32 $extra 2>&1 | tee -a "$OUT/train_bench.txt"
done
python3 bench/gpu/summarize.py "$OUT" | tee -a "$OUT/summary.txt"
log "done in $(( $(date +%s) - t0 )) s"
