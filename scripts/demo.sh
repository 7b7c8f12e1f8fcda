#!/usr/bin/env bash
# provp's main job, end to end on one machine with no downloads:
#   1. installs the Debian packages and builds (scripts/install-deps.sh, build.sh);
#   2. prepares the built-in small CLIP and the demo datasets (cached), unless
#      --model PATH (or PROVP_MODEL) names real CLIP weights;
#   3. starts provp-server on 127.0.0.1 and drives it with the `provp` CLI:
#      zero-shot classification, dataset upload, a ProVP-Ref tuning job on the
#      base classes followed live, classification of base and novel classes
#      with the new prompt set, and a closing summary (zero-shot vs tuned).
# The server's state stays in --data-dir (default ./data/demo) afterwards.
#
#   scripts/demo.sh [--model PATH] [--data-dir DIR] [--dataset DemoFashion|DemoColors|DemoShapes]
#                   [--shots 16] [--epochs N] [--keep-server]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODEL="${PROVP_MODEL:-}"
DATA_DIR="${PROVP_DEMO_DIR:-$ROOT/data/demo}"
DATASET=DemoFashion
SHOTS=16
EPOCHS=""
KEEP_SERVER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --dataset) DATASET="$2"; shift 2 ;;
    --shots) SHOTS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --keep-server) KEEP_SERVER=1; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing packages and building (first run: several minutes)"
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD="$ROOT/${PROVP_BUILD_DIR:-build}"
PROVP="$BUILD/client/provp"
SERVER="$BUILD/server/provp-server"
BUILTIN="$BUILD/tools/provp_builtin/provp-builtin"

step "Preparing the built-in model and demo datasets (cached in $DATA_DIR/builtin)"
"$BUILTIN" prepare --data-dir "$DATA_DIR/builtin"
DATASET_DIR="$DATA_DIR/builtin/datasets/$DATASET"
[ -d "$DATASET_DIR" ] || { echo "demo: no dataset $DATASET in $DATA_DIR/builtin/datasets" >&2; exit 1; }
if [ -z "$MODEL" ]; then
  MODEL="$DATA_DIR/builtin/model"
  echo "model: built-in small CLIP ($MODEL)"
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

# Class names and a few test images per class, from the dataset's split file.
SPLIT=$(ls "$DATASET_DIR"/split_zhou_*.json | head -1)
read_split() {
  python3 - "$SPLIT" "$DATASET_DIR" "$1" <<'PY'
import json, math, sys
split, root, what = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
names = {}
for _, label, name in split["train"]:
    names[label] = name
ordered = [names[k] for k in sorted(names)]
nb = math.ceil(len(ordered) / 2)
if what == "base": print(",".join(ordered[:nb]))
elif what == "novel": print(",".join(ordered[nb:]))
elif what == "all": print(",".join(ordered))
else:
    want = set(range(nb)) if what == "base-images" else set(range(nb, len(ordered)))
    seen = {}
    for path, label, _ in split["test"]:
        if label in want and seen.get(label, 0) < 1:
            seen[label] = 1
            print(f"{root}/{path}")
PY
}
ALL=$(read_split all); BASE=$(read_split base); NOVEL=$(read_split novel)
mapfile -t BASE_IMAGES < <(read_split base-images | head -4)
mapfile -t NOVEL_IMAGES < <(read_split novel-images | head -4)

step "Zero-shot classification (no prompts) among all $DATASET classes"
"$PROVP" classify --classes "$ALL" --top-k 3 "${BASE_IMAGES[@]:0:2}" "${NOVEL_IMAGES[@]:0:2}" || true

step "Uploading $DATASET (base/novel split by the paper's rule)"
ID=$(echo "$DATASET" | tr 'A-Z' 'a-z')
"$PROVP" datasets get "$ID" >/dev/null 2>&1 || \
  "$PROVP" datasets upload "$DATASET_DIR" --id "$ID" --novel auto --min-shots "$SHOTS"

step "Tuning ProVP-Ref prompts on the base classes ($SHOTS shots)"
JOB_ID="$ID-ref-$(date +%H%M%S)"
TUNE_ARGS=(--dataset "$ID" --shots "$SHOTS" --preset base_to_novel --id "$JOB_ID" --output-prompt-set "$JOB_ID")
[ -n "$EPOCHS" ] && TUNE_ARGS+=(--epochs "$EPOCHS")
"$PROVP" tune "${TUNE_ARGS[@]}"

step "Classifying base classes with the new prompt set"
"$PROVP" classify --prompt-set "$JOB_ID" --classes "$BASE" --top-k 3 "${BASE_IMAGES[@]}" || true
step "Classifying novel classes (never seen in training) with the same prompt set"
"$PROVP" classify --prompt-set "$JOB_ID" --classes "$NOVEL" --top-k 3 "${NOVEL_IMAGES[@]}" || true

step "Summary"
"$PROVP" --json jobs get "$JOB_ID" > "$DATA_DIR/last-job.json"
python3 - "$DATA_DIR/last-job.json" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
e = job.get("result", {}).get("evaluation", {})
b, n = e.get("base_accuracy", 0.0), e.get("novel_accuracy", 0.0)
zb, zn = e.get("zero_shot_base_accuracy", 0.0), e.get("zero_shot_novel_accuracy", 0.0)
def hm(x, y):
    return 2 * x * y / (x + y) if x + y > 0 else 0.0
print("%-22s%8s%8s%8s" % ("", "base", "novel", "HM"))
print("%-22s%8.2f%8.2f%8.2f" % ("zero-shot CLIP", 100 * zb, 100 * zn, 100 * hm(zb, zn)))
print("%-22s%8.2f%8.2f%8.2f" % ("ProVP-Ref (tuned)", 100 * b, 100 * n, 100 * hm(b, n)))
print("prompt set: %s" % job.get("result", {}).get("prompt_set", "?"))
PY
echo
echo "Server state (SQLite, datasets, prompt sets, checkpoints): $DATA_DIR/server"
echo "Server log: $DATA_DIR/server.log"
[ "$KEEP_SERVER" = 1 ] && echo "Server still running at $PROVP_ADDRESS (pid $SERVER_PID)"
exit 0
