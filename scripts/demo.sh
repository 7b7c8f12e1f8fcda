#!/usr/bin/env bash
# provp's main job, end to end on one machine with no downloads:
#   1. installs the Debian packages and builds (scripts/install-deps.sh, build.sh);
#   2. prepares the built-in small CLIP and the demo datasets (cached), unless
#      --model PATH (or PROVP_MODEL) names real CLIP weights;
#   3. starts provp-server on 127.0.0.1 and drives it with the `provp` CLI:
#      zero-shot classification, dataset upload, a ProVP-Ref tuning job on the
#      base classes followed live, classification of base and novel classes
#      with the new prompt set, and a closing summary (zero-shot vs tuned).
# The server's state stays in --data-dir (default ./data/demo) afterwards; the
# summary is also written to DIR/summary.json.
#
#   scripts/demo.sh [--model PATH] [--data-dir DIR] [--dataset DemoFashion|DemoColors|DemoShapes]
#                   [--shots 16] [--epochs N] [--pretrain-steps N] [--eval-per-class N]
#                   [--no-setup] [--keep-server]
#
# --no-setup skips step 1 (packages and build already there).
# --eval-per-class N classifies N test images per class through the server
# for the summary (default 0: every test image, as the job's evaluation does;
# on 100 + 100 images one image moved the harmonic mean by about a point).
# The built-in model's tuning uses 50 epochs and no crop augmentation (its
# 32 px inputs lose the object under CoOp's 8 %-area crops); real weights
# get the preset.
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD
# Paths given on the command line are relative to where it was typed.
from_caller() { case "$1" in /*) echo "$1" ;; *) echo "$CALLER/$1" ;; esac; }

MODEL=""
[ -n "${PROVP_MODEL:-}" ] && MODEL=$(from_caller "$PROVP_MODEL")
DATA_DIR="$ROOT/data/demo"
[ -n "${PROVP_DEMO_DIR:-}" ] && DATA_DIR=$(from_caller "$PROVP_DEMO_DIR")
DATASET=DemoFashion
SHOTS=16
EPOCHS=""
PRETRAIN_STEPS=""
EVAL_PER_CLASS=0
SETUP=1
KEEP_SERVER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$(from_caller "$2"); shift 2 ;;
    --data-dir) DATA_DIR=$(from_caller "$2"); shift 2 ;;
    --dataset) DATASET="$2"; shift 2 ;;
    --shots) SHOTS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --pretrain-steps) PRETRAIN_STEPS="$2"; shift 2 ;;
    --eval-per-class) EVAL_PER_CLASS="$2"; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --keep-server) KEEP_SERVER=1; shift ;;
    -h|--help) sed -n 2,23p "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
START=$(date +%s)

step() { printf '\n\033[1m== %s\033[0m (%ds)\n' "$*" "$(( $(date +%s) - START ))"; }

if [ "$SETUP" = 1 ]; then
  step "Installing packages and building (first run: several minutes)"
  bash scripts/install-deps.sh
  bash scripts/build.sh
  START=$(date +%s)  # the 10-minute budget starts after set-up and build
fi
BUILD="${PROVP_BUILD_DIR:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
PROVP="$BUILD/client/provp"
SERVER="$BUILD/server/provp-server"
BUILTIN="$BUILD/tools/provp_builtin/provp-builtin"
for bin in "$PROVP" "$SERVER" "$BUILTIN"; do
  [ -x "$bin" ] || { echo "demo: $bin is missing (build first, or drop --no-setup)" >&2; exit 1; }
done

# The OpenBLAS kernels this machine runs (OPENBLAS_CORETYPE or OpenBLAS's
# own pick), for the summary: the built-in model is pretrained here, so they
# are part of what a run measured.
OPENBLAS_CORE=$(python3 -c 'import ctypes
try:
    lib = ctypes.CDLL("libopenblas.so.0"); lib.openblas_get_corename.restype = ctypes.c_char_p
    print(lib.openblas_get_corename().decode())
except Exception:
    print("unknown")' 2>/dev/null || echo unknown)

step "Preparing the built-in model and demo datasets (cached in $DATA_DIR/builtin)"
PREP_ARGS=(prepare --data-dir "$DATA_DIR/builtin")
[ -n "$PRETRAIN_STEPS" ] && PREP_ARGS+=(--steps "$PRETRAIN_STEPS")
"$BUILTIN" "${PREP_ARGS[@]}" 2>&1 | tee "$DATA_DIR/builtin.log"
# provp-builtin swaps OpenBLAS' generic fallback for the CPU's AVX2/AVX-512
# kernels itself (util/blas_kernels.h).
RESTARTED_CORE=$(sed -n 's/.*restarting with OPENBLAS_CORETYPE=\([A-Za-z0-9]*\).*/\1/p' "$DATA_DIR/builtin.log" | head -1)
[ -n "$RESTARTED_CORE" ] && OPENBLAS_CORE="$RESTARTED_CORE (provp-builtin's restart)"
DATASET_DIR="$DATA_DIR/builtin/datasets/$DATASET"
[ -d "$DATASET_DIR" ] || { echo "demo: no dataset $DATASET in $DATA_DIR/builtin/datasets" >&2; exit 1; }
TUNE_EXTRA=()
if [ -z "$MODEL" ]; then
  MODEL="$DATA_DIR/builtin/model/clip.safetensors"
  echo "model: built-in small CLIP ($MODEL)"
  EPOCHS="${EPOCHS:-50}"
  TUNE_EXTRA=(--min-crop-scale 1.0)
else
  echo "model: $MODEL"
fi

step "Starting provp-server on 127.0.0.1"
rm -f "$DATA_DIR/server.port"
"$SERVER" --model "$MODEL" --data-dir "$DATA_DIR/server" --listen 127.0.0.1:0 \
  --port-file "$DATA_DIR/server.port" --metrics-port 0 --metrics-bind 127.0.0.1 \
  > "$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
  if [ "$KEEP_SERVER" = 0 ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  [ -s "$DATA_DIR/server.port" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "demo: provp-server exited; log:" >&2; tail -20 "$DATA_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done
export PROVP_ADDRESS="127.0.0.1:$(cat "$DATA_DIR/server.port")"
"$PROVP" health --wait 120
"$PROVP" info

# Class names, and test images per class, from the dataset's split file. The
# base/novel rule is the paper's (first ceil(n/2) labels are base), the same
# one `datasets upload --novel auto` applies.
SPLIT=$(ls "$DATASET_DIR"/split_zhou_*.json | head -1)
read_split() {
  python3 - "$SPLIT" "$DATASET_DIR" "$1" "${2:-1}" <<'PY'
import json, math, sys
split, root, what, per_class = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4])
names = {}
for _, label, name in split["train"]:
    names[label] = name
ordered = [names[k] for k in sorted(names)]
nb = math.ceil(len(ordered) / 2)
if what == "base": print(",".join(ordered[:nb]))
elif what == "novel": print(",".join(ordered[nb:]))
elif what == "all": print(",".join(ordered))
else:  # base-images / novel-images: "<path>\t<class name>" lines
    want = set(range(nb)) if what == "base-images" else set(range(nb, len(ordered)))
    seen = {}
    for path, label, name in split["test"]:
        if label in want and (per_class <= 0 or seen.get(label, 0) < per_class):
            seen[label] = seen.get(label, 0) + 1
            print(f"{root}/{path}\t{name}")
PY
}
ALL=$(read_split all); BASE=$(read_split base); NOVEL=$(read_split novel)
mapfile -t BASE_IMAGES < <(read_split base-images 1 | cut -f1 | head -4)
mapfile -t NOVEL_IMAGES < <(read_split novel-images 1 | cut -f1 | head -4)

step "Zero-shot classification (no prompts) among all $DATASET classes"
"$PROVP" classify --classes "$ALL" --top-k 3 "${BASE_IMAGES[@]:0:2}" "${NOVEL_IMAGES[@]:0:2}"

step "Uploading $DATASET (base/novel split by the paper's rule)"
ID=$(echo "$DATASET" | tr 'A-Z' 'a-z')
"$PROVP" datasets get "$ID" >/dev/null 2>&1 || \
  "$PROVP" datasets upload "$DATASET_DIR" --id "$ID" --novel auto --min-shots "$SHOTS"

step "Tuning ProVP-Ref prompts on the base classes ($SHOTS shots)"
JOB_ID="$ID-ref-$(date +%H%M%S)"
TUNE_ARGS=(--dataset "$ID" --shots "$SHOTS" --preset base_to_novel --id "$JOB_ID" --output-prompt-set "$JOB_ID")
[ -n "$EPOCHS" ] && TUNE_ARGS+=(--epochs "$EPOCHS")
"$PROVP" tune "${TUNE_ARGS[@]}" "${TUNE_EXTRA[@]}"

step "Classifying base classes with the new prompt set"
"$PROVP" classify --prompt-set "$JOB_ID" --classes "$BASE" --top-k 3 "${BASE_IMAGES[@]}"
step "Classifying novel classes (never seen in training) with the same prompt set"
"$PROVP" classify --prompt-set "$JOB_ID" --classes "$NOVEL" --top-k 3 "${NOVEL_IMAGES[@]}"

if [ "$EVAL_PER_CLASS" -gt 0 ]; then EVAL_WHAT="$EVAL_PER_CLASS test images per class"; else EVAL_WHAT="every test image"; fi
step "Measuring through the server: $EVAL_WHAT, zero-shot vs tuned"
EVAL="$DATA_DIR/eval"
mkdir -p "$EVAL"
read_split base-images "$EVAL_PER_CLASS" > "$EVAL/base.tsv"
read_split novel-images "$EVAL_PER_CLASS" > "$EVAL/novel.tsv"
for part in base novel; do
  classes=$BASE; [ "$part" = novel ] && classes=$NOVEL
  mapfile -t files < <(cut -f1 "$EVAL/$part.tsv")
  "$PROVP" --json classify --classes "$classes" --top-k 1 --batch-size 64 "${files[@]}" \
    > "$EVAL/$part.zero_shot.json"
  "$PROVP" --json classify --prompt-set "$JOB_ID" --classes "$classes" --top-k 1 --batch-size 64 \
    "${files[@]}" > "$EVAL/$part.tuned.json"
done

step "Summary"
"$PROVP" --json jobs get "$JOB_ID" > "$DATA_DIR/last-job.json"
python3 - "$DATA_DIR/last-job.json" "$EVAL" "$DATA_DIR/summary.json" "$BASE" "$NOVEL" \
  "$(( $(date +%s) - START ))" "$OPENBLAS_CORE" "$$" "$SERVER_PID" <<'PY'
import json, os, sys
job_path, eval_dir, out_path, base, novel, seconds, core, shell_pid, server_pid = sys.argv[1:10]

def cpu_seconds():
    """CPU time of the job so far: the shell's finished children plus the server."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid, fields in ((shell_pid, (13, 14, 15, 16)), (server_pid, (13, 14))):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += sum(int(stat[i - 2]) for i in fields)
        except (OSError, IndexError, ValueError):
            pass
    return total / tick
job = json.load(open(job_path))
e = job.get("result", {}).get("evaluation", {})

def server_accuracy(part, kind):
    """Top-1 accuracy of the CLI's JSON answers against the split's labels."""
    truth = [line.rstrip("\n").split("\t")[1] for line in open(f"{eval_dir}/{part}.tsv")]
    text, dec, pos, preds = open(f"{eval_dir}/{part}.{kind}.json").read(), json.JSONDecoder(), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        resp, pos = dec.raw_decode(text, pos)
        for r in resp.get("results", []):
            labels = r.get("prediction", {}).get("labels", [])
            preds.append(labels[0]["label"] if labels else None)
    if len(preds) != len(truth):
        sys.exit(f"demo: {part}/{kind}: {len(preds)} answers for {len(truth)} images")
    return sum(p == t for p, t in zip(preds, truth)) / len(truth), len(truth)

def hm(x, y):
    return 2 * x * y / (x + y) if x + y > 0 else 0.0

srv = {f"{p}_{k}": server_accuracy(p, k) for p in ("base", "novel") for k in ("zero_shot", "tuned")}
summary = {
    "job": job.get("name"), "prompt_set": job.get("result", {}).get("prompt_set"),
    "base_classes": base.split(","), "novel_classes": novel.split(","),
    "job_evaluation": {  # the engine's evaluation on the whole test split
        "zero_shot_base": e.get("zero_shot_base_accuracy", 0.0),
        "zero_shot_novel": e.get("zero_shot_novel_accuracy", 0.0),
        "tuned_base": e.get("base_accuracy", 0.0), "tuned_novel": e.get("novel_accuracy", 0.0)},
    "through_server": {k: v[0] for k, v in srv.items()},
    "through_server_images": {k: v[1] for k, v in srv.items()},
    "seconds_after_build": int(seconds),
    "cpu_seconds": round(cpu_seconds(), 1),
    "cpus": os.cpu_count(),
    "openblas_core": core,
}
je, ts = summary["job_evaluation"], summary["through_server"]
print("top-1 %%              %-26s %s" % ("job evaluation (test split)", "classified through the server"))
print("%-20s %8s %8s %8s   %8s %8s %8s" % ("", "base", "novel", "HM", "base", "novel", "HM"))
for name, key in (("zero-shot CLIP", "zero_shot"), ("ProVP-Ref (tuned)", "tuned")):
    jb, jn = je[f"{key}_base"], je[f"{key}_novel"]
    sb, sn = ts[f"base_{key}"], ts[f"novel_{key}"]
    print("%-20s %8.2f %8.2f %8.2f   %8.2f %8.2f %8.2f" %
          (name, 100 * jb, 100 * jn, 100 * hm(jb, jn), 100 * sb, 100 * sn, 100 * hm(sb, sn)))
d_job = hm(je["tuned_base"], je["tuned_novel"]) - hm(je["zero_shot_base"], je["zero_shot_novel"])
d_srv = hm(ts["base_tuned"], ts["novel_tuned"]) - hm(ts["base_zero_shot"], ts["novel_zero_shot"])
d_nov = je["tuned_novel"] - je["zero_shot_novel"]
summary["hm_gain"] = {"job_evaluation": d_job, "through_server": d_srv, "novel_job_evaluation": d_nov}
print("ProVP-Ref - zero-shot: HM %+.2f (job), %+.2f (server); novel %+.2f (job)" %
      (100 * d_job, 100 * d_srv, 100 * d_nov))
print("prompt set: %s" % summary["prompt_set"])
print("%d s after set-up and build (%.0f CPU-s on %d CPUs, OpenBLAS kernels: %s)" %
      (summary["seconds_after_build"], summary["cpu_seconds"], summary["cpus"], core))
json.dump(summary, open(out_path, "w"), indent=2)
PY
echo
echo "Summary: $DATA_DIR/summary.json"
echo "Server state (SQLite, datasets, prompt sets, checkpoints): $DATA_DIR/server"
echo "Server log: $DATA_DIR/server.log"
[ "$KEEP_SERVER" = 1 ] && echo "Server still running at $PROVP_ADDRESS (pid $SERVER_PID)"
exit 0
