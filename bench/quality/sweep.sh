#!/usr/bin/env bash
# Learning-rate x epochs sweep of the few-shot recipe on the built-in model
# (issue 15: do the prompt variants trail the linear probe because of the
# recipe or because of the model?). Runs provp-quality-bench once per
# (learning rate, epochs) pair on the few-shot setting only and prints one
# table: mean top-1 over the seeds per dataset, variant and pair.
#   DATA=data-dir BUILD=build OUT=out-dir bench/quality/sweep.sh
# Override the grid with SWEEP_LRS and SWEEP_EPOCHS (space-separated) and
# SWEEP_SHOTS, SWEEP_SEEDS, SWEEP_VARIANTS, SWEEP_DATASETS (comma-separated,
# passed to the bench as they are). Finished pairs are skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DATA=${DATA:?DATA= the folder provp-builtin prepare wrote}
OUT=${OUT:-${BUILD}/quality-sweep}
LRS=${SWEEP_LRS:-0.02 0.1 0.5}
EPOCHS=${SWEEP_EPOCHS:-10 50 150}
SHOTS=${SWEEP_SHOTS:-16}
SEEDS=${SWEEP_SEEDS:-1,2}
VARIANTS=${SWEEP_VARIANTS:-vpt_shallow,provp_ref}
DATASETS=${SWEEP_DATASETS:-DemoFashion,DemoColors,DemoShapes}
BENCH="${BUILD}/bench/quality/provp-quality-bench"
mkdir -p "$OUT"
for lr in $LRS; do
  for ep in $EPOCHS; do
    dir="$OUT/lr${lr}_ep${ep}"
    [ -s "$dir/results.json" ] && continue
    echo "lr $lr epochs $ep" >&2
    "$BENCH" --data-dir "$DATA" --out "$dir" --no-b2n --shots "$SHOTS" --seeds "$SEEDS" \
      --variants "$VARIANTS" --datasets "$DATASETS" --learning-rate "$lr" \
      --epochs-low "$ep" --epochs-high "$ep" > "$dir.log" 2>&1
  done
done
python3 - "$OUT" <<'PY'
import json, os, sys, collections
out = sys.argv[1]
acc = collections.defaultdict(list)
configs = []
for d in sorted(os.listdir(out)):
    p = os.path.join(out, d, "results.json")
    if not os.path.exists(p):
        continue
    lr, ep = d[2:].split("_ep")
    configs.append((float(lr), int(ep)))
    for r in json.load(open(p))["runs"]:
        acc[(r["dataset"], r["variant"], r["shots"], float(lr), int(ep))].append(r["accuracy"])
configs = sorted(set(configs))
rows = sorted({k[:3] for k in acc})
print("| dataset | variant | shots | " + " | ".join(f"lr {lr:g}, {ep} ep" for lr, ep in configs) + " |")
print("|---|---|---|" + "---|" * len(configs))
for ds, var, shots in rows:
    cells = []
    for lr, ep in configs:
        v = acc.get((ds, var, shots, lr, ep))
        cells.append(f"{sum(v) / len(v):.1f}" if v else "")
    print(f"| {ds} | {var} | {shots} | " + " | ".join(cells) + " |")
PY
