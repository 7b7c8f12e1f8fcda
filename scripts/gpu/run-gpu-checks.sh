#!/usr/bin/env bash
# Runs on the GPU host (see docs/gpu.md): unpacks the carried Debian
# libraries (prepare-carry.sh), builds the whole project against the Python
# torch's LibTorch (2.x + CUDA) with the native image codec (no OpenCV), runs
# the unit/parity/gpu suites, the benchmarks next to a same-run PyTorch
# baseline, and the real server under bench/server's loopback load. Results
# go to $OUT (or out/gpu).
#
# Resumable: each step leaves a marker in $STATE (/tmp, kept while the
# machine stays warm), and the script stops before a step that would run past
# PROVP_GPU_DEADLINE_S (default 540 s, under the device tool's 600 s per
# command). Run it again on the same machine and it goes on where it stopped.
# If the full build cannot be configured there, the LibTorch-only targets are
# built instead and the server step is skipped with the reason.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT="${OUT:-$PWD/out/gpu}"
STATE=/tmp/provp-gpu-state
BUILD=/tmp/provp-gpu-build
ROOT=/tmp/provp-gpu-deps
DEADLINE="${PROVP_GPU_DEADLINE_S:-540}"
mkdir -p "$OUT" "$STATE"
CARRY=$PWD/.gpu-carry
DEPS=$ROOT/usr
t0=$(date +%s)
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
elapsed() { echo $(( $(date +%s) - t0 )); }
# step NAME ESTIMATE_S: true when the step should run now.
step() {
  [ -f "$STATE/$1.done" ] && return 1
  if [ $(( $(elapsed) + $2 )) -gt "$DEADLINE" ]; then
    log "stopping before '$1' (~$2 s) at $(elapsed) s: run this script again to go on"
    exit 0
  fi
  log "step $1 (at $(elapsed) s)"
  return 0
}
done_step() { touch "$STATE/$1.done"; }

if step unpack 60; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$STATE/gpu.txt"
  python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$STATE/gpu.txt"
  rm -rf "$ROOT" && mkdir -p "$ROOT"
  if command -v xz >/dev/null; then
    tar -xJf "$CARRY/deps.tar.xz" -C "$ROOT"
  else
    python3 -c 'import sys,tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$CARRY/deps.tar.xz" "$ROOT"
  fi
  done_step unpack
fi
cp "$STATE/gpu.txt" "$OUT/gpu.txt" 2>/dev/null
export LD_LIBRARY_PATH="$DEPS/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export PATH="$DEPS/bin:$PATH"
# Debian's .pc files say prefix=/usr: the sysroot moves them onto $ROOT.
export PKG_CONFIG_SYSROOT_DIR=$ROOT
export PKG_CONFIG_LIBDIR="$DEPS/lib/x86_64-linux-gnu/pkgconfig:$DEPS/share/pkgconfig"
export PROVP_SHARED_DIR=$CARRY/shared
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# torch/ itself first, so find_library takes the wheel's libtorch.
TORCH_ROOT=$(dirname "$(dirname "$TORCH_PREFIX")")
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"

if step build 330; then
  common=(-DCMAKE_BUILD_TYPE=Release -DPROVP_BUILD_TESTS=ON -DPROVP_SHARED_DIR="$PROVP_SHARED_DIR"
          -DCMAKE_PREFIX_PATH="$TORCH_ROOT;$TORCH_PREFIX;$DEPS;$DEPS/lib/x86_64-linux-gnu/cmake;$DEPS/share/cmake"
          -DProtobuf_PROTOC_EXECUTABLE="$DEPS/bin/protoc")
  if cmake -S . -B $BUILD "${common[@]}" -DPROVP_IMAGE_CODEC=native > "$OUT/cmake.log" 2>&1; then
    echo full > "$STATE/build-kind"
  else
    log "full configure failed (cmake.log); building the LibTorch-only targets"
    grep -E "CMake Error|Could not|not found" -A3 "$OUT/cmake.log" | head -30 | tee -a "$OUT/summary.txt"
    rm -rf $BUILD
    cmake -S . -B $BUILD "${common[@]}" -DPROVP_TORCH_ONLY=ON > "$OUT/cmake-torch-only.log" 2>&1 ||
      { log "configure failed"; tail -40 "$OUT/cmake-torch-only.log"; exit 1; }
    echo torch-only > "$STATE/build-kind"
  fi
  # Keep going past a failing target so the rest still gets measured.
  cmake --build $BUILD -j16 -- -k > "$OUT/build.log" 2>&1 ||
    { log "build had errors"; grep -E "error" -A4 "$OUT/build.log" | head -60 | tee -a "$OUT/summary.txt"; }
  log "configure+build ($(cat "$STATE/build-kind")) done at $(elapsed) s"
  done_step build
fi
KIND=$(cat "$STATE/build-kind" 2>/dev/null || echo none)
BENCH=$BUILD/bench

if step ctest 150; then
  # Not the integration/e2e suites: they start PostgreSQL, which is not there.
  (cd $BUILD && ctest -L 'gpu|parity|unit' --output-on-failure -j8 --timeout 300 > "$OUT/ctest.log" 2>&1)
  log "ctest: $(grep -E 'tests passed|tests failed' "$OUT/ctest.log")"
  grep -E "^\s+[0-9]+ - .*\((Failed|Exception|Timeout)\)" "$OUT/ctest.log" | tee -a "$OUT/summary.txt"
  (cd $BUILD && ctest -L gpu -V 2>&1 | grep -E "OK \]|FAILED|SKIPPED" > "$OUT/gpu-tests.txt")
  done_step ctest
fi

if step baseline 150; then
  log "baselines (reference-shaped PyTorch fp16 and the same model under torch.compile, same GPU)"
  python3 bench/gpu/reference_baseline.py --prompts 50 --infer-batch 1,32,256 --train-batch 32 \
    2>&1 | tee "$OUT/baseline.jsonl"
  cp "$OUT/baseline.jsonl" "$STATE/"
  done_step baseline
fi

if step clip_bench 90; then
  log "provp clip bench (JSON lines; mixed_sets_forward: 256 images with 256 different prompt sets)"
  for args in "--size vit-b16 --device cuda --dtype bf16 --prompts 50 --batch 1,32,256 --mixed-sets 256" \
              "--size vit-b16 --device cuda --dtype fp16 --prompts 50 --batch 256" \
              "--size vit-b16 --device cuda --dtype bf16 --batch 256"; do
    # shellcheck disable=SC2086  # a word list on purpose
    [ -x $BENCH/clip/provp_clip_bench ] && $BENCH/clip/provp_clip_bench $args --image-only --iters 20 --json 2>&1 | tee -a "$OUT/clip_bench.jsonl"
  done
  cp "$OUT/clip_bench.jsonl" "$STATE/" 2>/dev/null
  done_step clip_bench
fi

if step train_bench 90; then
  log "provp train bench"
  # --no-augment matches the baseline's step (it feeds ready tensors); the
  # second run includes the on-device augmentation of decoded images.
  for extra in "--no-augment" ""; do
    # shellcheck disable=SC2086
    [ -x $BENCH/train/provp_train_bench ] && $BENCH/train/provp_train_bench --size vit-b16 --device cuda \
      --dtype bf16 --prompts 50 --batch 32 $extra 2>&1 | tee -a "$OUT/train_bench.txt"
  done
  done_step train_bench
fi

if step server 200; then
  if [ "$KIND" != full ] || [ ! -x $BENCH/server/provp_server_bench ]; then
    log "server: not built (build kind: $KIND); see cmake.log and build.log"
  else
    # Random ViT-B/16 weights in OpenAI's layout (shapes decide speed).
    python3 bench/gpu/make_random_clip.py /tmp/provp-vit-b16.safetensors
    log "server on loopback, JPEG 224-640 px, zero-shot and 100 prompt sets (issue 11 item 5)"
    for sets in 0 100; do
      $BENCH/server/provp_server_bench --model /tmp/provp-vit-b16.safetensors \
        --vocab "$PROVP_SHARED_DIR/clip/bpe_simple_vocab_16e6.txt.gz" --device cuda \
        --image-size 224 480 640 --images-per-request 1 32 --clients 16 --seconds 8 \
        --max-batch-size 256 --prompt-sets $sets 2>&1 | tee -a "$OUT/server_bench.txt"
    done
    log "tuning while serving (item 6)"
    $BENCH/server/provp_server_bench --model /tmp/provp-vit-b16.safetensors \
      --vocab "$PROVP_SHARED_DIR/clip/bpe_simple_vocab_16e6.txt.gz" --device cuda \
      --image-size 224 --images-per-request 1 32 --clients 8 --seconds 6 --tune-while-serving \
      2>&1 | tee -a "$OUT/server_bench.txt"
  fi
  done_step server
fi

cp "$STATE"/*.jsonl "$OUT/" 2>/dev/null
python3 bench/gpu/summarize.py "$OUT" | tee -a "$OUT/summary.txt"
log "all steps done at $(elapsed) s"
