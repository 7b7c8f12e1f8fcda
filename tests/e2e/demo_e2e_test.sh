#!/usr/bin/env bash
# The README's first command, scripts/demo.sh, end to end on the built-in
# model in a smaller configuration (fewer pretraining steps): pretraining,
# server, upload, a ProVP-Ref job on the base classes, classification
# through the server. Then checks that can fail: tuning lifts base accuracy
# on the shifted test set by a clear margin over zero-shot (job evaluation on
# the whole test split, and again through the server), and the tuned prompt
# set still classifies the novel classes, which it never saw, well above
# chance through the server.
#   demo_e2e_test.sh BUILD_DIR [PRETRAIN_STEPS]
set -euo pipefail
BUILD_DIR=$(cd "$1" && pwd)
STEPS=${2:-500}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Tests keep OpenBLAS' own kernel choice (the environment's rule).
export PROVP_KEEP_OPENBLAS=1
PROVP_BUILD_DIR="$BUILD_DIR" bash "$SRC/scripts/demo.sh" --no-setup --data-dir "$WORK/demo" \
  --pretrain-steps "$STEPS" --dataset DemoFashion

python3 - "$WORK/demo/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
je, ts = s["job_evaluation"], s["through_server"]
novel_chance = 1.0 / len(s["novel_classes"])
failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
MARGIN = 0.08  # eight points of top-1: about three standard errors on 300 test images
check(je["tuned_base"] >= je["zero_shot_base"] + MARGIN,
      "job evaluation: tuned base %.3f >= zero-shot base %.3f + %.2f"
      % (je["tuned_base"], je["zero_shot_base"], MARGIN))
check(ts["base_tuned"] >= ts["base_zero_shot"] + MARGIN / 2,
      "through the server: tuned base %.3f >= zero-shot base %.3f + %.2f"
      % (ts["base_tuned"], ts["base_zero_shot"], MARGIN / 2))
check(ts["novel_tuned"] >= 1.5 * novel_chance,
      "through the server: tuned novel %.3f >= 1.5 x chance (%.3f)" % (ts["novel_tuned"], 1.5 * novel_chance))
check(s["through_server_images"]["novel_tuned"] >= 50, "at least 50 novel images classified")
if failures:
    sys.exit("demo e2e: %d check(s) failed" % len(failures))
print("demo e2e: all checks passed")
PY
