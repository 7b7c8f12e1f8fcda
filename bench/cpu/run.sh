#!/usr/bin/env bash
# CPU same-run comparison: the reference ProVP image tower in Python
# (bench/cpu/reference_cpu.py on Debian's python3-torch 1.13, the LibTorch
# generation provp links) against provp_clip_bench / provp_train_bench, in
# one command, alternating the two systems for --rounds rounds so that load
# from other processes falls on both. Prints a table of best-of-rounds rates
# and ratios, process user/system CPU seconds and page faults per call, and
# `uptime` before and after; writes every JSON line to --out.
#
# Setup (the benchmark's own, not the product's): installs python3-torch
# with apt-get when /usr/bin/python3 cannot import torch.
#
# With --python PY the reference runs on that interpreter's torch instead
# (e.g. the torch 2.11 venv of scripts/cuda-build.sh, next to
# --build-dir build-cuda: both systems on the wheel's LibTorch, MKL and
# oneDNN).
#
# usage: bench/cpu/run.sh [--threads 2] [--batch 1,8] [--train-batch 8]
#                         [--prompts 50] [--iters 3] [--rounds 2]
#                         [--out bench-cpu.jsonl] [--build-dir build]
#                         [--python /usr/bin/python3]
set -euo pipefail
cd "$(dirname "$0")/../.."

threads=2 batch=1,8 train_batch=8 prompts=50 iters=3 rounds=2
out=bench-cpu.jsonl build_dir="${PROVP_BUILD_DIR:-build}" py=/usr/bin/python3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --train-batch) train_batch=$2; shift 2 ;;
    --prompts) prompts=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench/cpu/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! "$py" -c 'import torch' 2>/dev/null; then
  [[ $py == /usr/bin/python3 ]] || { echo "bench/cpu/run.sh: $py cannot import torch" >&2; exit 1; }
  echo "installing Debian's python3-torch for the reference baseline" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench/cpu/run.sh: python3-torch is missing and apt-get needs root" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch >/dev/null
fi
clip_bench="$build_dir/bench/clip/provp_clip_bench"
train_bench="$build_dir/bench/train/provp_train_bench"
for b in "$clip_bench" "$train_bench"; do
  [[ -x $b ]] || { echo "bench/cpu/run.sh: $b is not built (scripts/build.sh)" >&2; exit 1; }
done

# Both systems see the same environment. provp's programs replace OpenBLAS'
# generic fallback kernels (a CPU newer than Debian's OpenBLAS) by the CPU's
# AVX2/AVX-512 ones (core/util/blas_kernels.h); the reference gets the same
# OPENBLAS_CORETYPE here, so the kernels are never changed for one side only.
echo "host: $(hostname)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
core=$(OPENBLAS_VERBOSE=2 "$py" -c 'import torch' 2>&1 | sed -n 's/^Core: //p')
if [[ -z ${OPENBLAS_CORETYPE:-} && -z ${PROVP_KEEP_OPENBLAS:-} ]] &&
  [[ " Prescott Core2 Penryn Dunnington Nehalem Atom Sandybridge " == *" $core "* ]]; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  best=""
  if [[ $flags == *" avx512f "* && $flags == *" avx512bw "* && $flags == *" avx512dq "* &&
    $flags == *" avx512vl "* && $flags == *" avx512cd "* ]]; then
    best=SkylakeX
  elif [[ $flags == *" avx2 "* && $flags == *" fma "* ]]; then
    best=Haswell
  fi
  if [[ -n $best ]]; then
    export OPENBLAS_CORETYPE=$best
    core="$core -> $best (OPENBLAS_CORETYPE, for both systems, as provp's programs choose)"
  fi
fi
echo "openblas core: $core"
echo "reference torch: $("$py" -c 'import torch; print(torch.__version__, "BLAS:", "MKL" if torch.backends.mkl.is_available() else "other")')"
echo "uptime before: $(uptime)"
: >"$out"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds: reference" >&2
  "$py" bench/cpu/reference_cpu.py --threads "$threads" --prompts "$prompts" --batch "$batch" \
    --train-batch "$train_batch" --iters "$iters" | sed "s/^{/{\"round\": $r, /" >>"$out"
  echo "round $r/$rounds: provp" >&2
  "$clip_bench" --size vit-b16 --prompts "$prompts" --batch "$batch" --threads "$threads" \
    --warmup 1 --iters "$iters" --image-only --json | sed "s/^{/{\"round\": $r, /" >>"$out"
  if [[ $train_batch -gt 0 ]]; then
    "$train_bench" --size vit-b16 --prompts "$prompts" --batch "$train_batch" --threads "$threads" \
      --warmup 1 --steps "$iters" --no-augment --json | sed "s/^{/{\"round\": $r, /" >>"$out"
  fi
done
echo "uptime after:  $(uptime)"
"$py" - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    key = (r["what"], r["batch"], r["system"])
    if key not in best or r["best_s"] < best[key]["best_s"]:
        best[key] = r
print(f"{'measurement':<28}{'reference img/s':>16}{'provp img/s':>13}{'ratio':>8}"
      f"{'ref user/sys s':>17}{'provp user/sys s':>18}{'faults ref/provp':>18}")
for what, b in sorted({(k[0], k[1]) for k in best}):
    ref, pv = best.get((what, b, "reference")), best.get((what, b, "provp"))
    if not ref or not pv:
        continue
    print(f"{what + ' b' + str(b):<28}{ref['images_per_s']:>16.3f}{pv['images_per_s']:>13.3f}"
          f"{pv['images_per_s'] / ref['images_per_s']:>8.2f}"
          f"{ref['user_s']:>9.2f}/{ref['sys_s']:<7.2f}{pv['user_s']:>10.2f}/{pv['sys_s']:<7.2f}"
          f"{ref['minor_faults']:>9}/{pv['minor_faults']:<8}")
EOF
