#!/usr/bin/env bash
# A server job and provp-train on the same CoOp-layout dataset, with
# hand-picked novel classes that are not the trailing half, the same seed
# and hyperparameters, through the real binaries (provp-server, the provp
# CLI, provp-train) and the tiny CLIP: both must draw the same shots, keep
# the same epoch, write the same prompts and report the same evaluation,
# and the job must report the resolved hyperparameters. Everything on
# 127.0.0.1; every wait is bounded.
#   same_run_e2e_test.sh PROVP_SERVER PROVP_CLI PROVP_TRAIN SHARED_DIR
set -euo pipefail
SERVER=$1 PROVP=$2 TRAIN=$3 SHARED=$4
T=$(realpath "$(mktemp -d)")
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/server.log" ] && tail -20 "$T/server.log" >&2; exit 1; }

# CoOp layout: 5 classes x (5 train, 2 val, 2 test) images from the
# preprocess fixtures, listed in split_zhou_Same.json.
PRE=$SHARED/fixtures/preprocess
IMAGES=("$PRE/rgb_300x200.png" "$PRE/rgb_640x480_q90.jpg" "$PRE/gray_100x150.png" "$PRE/wide_1000x60.jpg" "$PRE/tiny_23x17.png" "$PRE/rgba_256x256.png")
D=$T/coop
python3 - "$D" "${IMAGES[@]}" <<'EOF'
import json, os, shutil, sys
root, images = sys.argv[1], sys.argv[2:]
classes = ["amber", "birch", "cedar", "dune", "ember"]
split = {"train": [], "val": [], "test": []}
n = 0
for label, name in enumerate(classes):
    for part, count in (("train", 5), ("val", 2), ("test", 2)):
        for k in range(count):
            src = images[(label * 2 + k + (part == "test")) % len(images)]
            rel = f"images/{name}/{part}{k}{os.path.splitext(src)[1]}"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            shutil.copy(src, os.path.join(root, rel))
            split[part].append([rel, label, name])
            n += 1
with open(os.path.join(root, "split_zhou_Same.json"), "w") as f:
    json.dump(split, f)
EOF

"$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
  --data-dir "$T/data" --listen 127.0.0.1:0 --port-file "$T/port" --metrics-port -1 \
  --dataset-roots "$T" > "$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; kill -0 $SERVER_PID || fail "server exited"; sleep 0.2; done
[ -s "$T/port" ] || fail "server did not report its port"
export PROVP_ADDRESS=127.0.0.1:$(cat "$T/port")
unset PROVP_API_KEY PROVP_API_KEY_FILE
"$PROVP" health --wait 60 | grep -qx SERVING || fail "health is not SERVING"

# Hand-picked novel classes: birch and dune (labels 1 and 3).
"$PROVP" datasets register "$D" --id same --layout coop --split-file split_zhou_Same.json \
  --novel birch,dune > "$T/out" 2> "$T/err" || fail "register: $(cat "$T/err")"
HP=(--shots 3 --seed 5 --epochs 2 --num-prompts 4 --batch-size 4 --selection best_val)
"$PROVP" tune --dataset same "${HP[@]}" --id job1 > "$T/tune.out" 2> "$T/tune.err" \
  || fail "tune: $(cat "$T/tune.err")"
"$PROVP" --json jobs get job1 > "$T/job.json" || fail "jobs get"
"$PROVP" prompt-sets export job1 -o "$T/server.pset" > /dev/null || fail "export"

"$TRAIN" --model "$SHARED/fixtures/tiny/openai.safetensors" --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
  --dataset-root "$D" --dataset Same --setting base2novel --novel-classes birch,dune \
  --seeds 5 --shots 3 --epochs 2 --num-prompts 4 --batch-size 4 --selection best_val \
  --out "$T/offline" > "$T/train.out" 2>&1 || fail "provp-train: $(tail -5 "$T/train.out")"

python3 - "$T/job.json" "$T/offline/result.json" "$T/server.pset" "$T/offline/prompts_seed5.safetensors" <<'EOF'
import json, struct, sys
job = json.load(open(sys.argv[1]))
offline = json.load(open(sys.argv[2]))["runs"][0]

def get(d, *names):
    for n in names:
        if n in d:
            return d[n]
    raise KeyError(names)

def prompts(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        begin, end = header["prompts"]["data_offsets"]
        f.seek(8 + n + begin)
        return header["prompts"]["shape"], f.read(end - begin)

def check(ok, what):
    if not ok:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)

hp = job["hyperparameters"]
check(hp["preset"] == "base_to_novel", f"resolved preset {hp.get('preset')}")
check(hp["selection"] == "best_val", "resolved selection")
check(hp["shots"] == 3 and hp["epochs"] == 2, "resolved shots/epochs")
check(abs(get(hp, "learningRate", "learning_rate") - 0.1) < 1e-12, "resolved learning rate")
check(abs(get(hp, "weightDecay", "weight_decay") - 1e-3) < 1e-12, "resolved weight decay")
check(get(hp, "batchSize", "batch_size") == 4, "resolved batch size")
check(get(hp, "useFeatureReformation", "use_feature_reformation") is True, "resolved Ref")
result = job["result"]
shots_server = get(result, "trainImages", "train_images")
shots_offline = offline["drawn_train_images"]
check(shots_server == shots_offline, f"shots differ:\n{shots_server}\n{shots_offline}")
check(len(shots_server) == 15, "3 shots x 5 classes drawn")
ev = result["evaluation"]
pairs = [("base", get(ev, "baseAccuracy", "base_accuracy"), offline["base_accuracy"]),
         ("novel", get(ev, "novelAccuracy", "novel_accuracy"), offline["novel_accuracy"]),
         ("zero-shot base", get(ev, "zeroShotBaseAccuracy", "zero_shot_base_accuracy"),
          offline["zero_shot_base_accuracy"]),
         ("zero-shot novel", get(ev, "zeroShotNovelAccuracy", "zero_shot_novel_accuracy"),
          offline["zero_shot_novel_accuracy"])]
for name, server, cli in pairs:
    check(abs(100 * server - cli) < 1e-9, f"{name}: server {100 * server} vs provp-train {cli}")
check(result.get("selectedEpoch", result.get("selected_epoch")) ==
      offline["training"]["selected_epoch"], "selected epoch")
check(offline["base_classes"] == ["amber", "cedar", "ember"], "base classes")
check(offline["novel_classes"] == ["birch", "dune"], "novel classes")
sa, sb = prompts(sys.argv[3]), prompts(sys.argv[4])
check(sa[0] == sb[0], f"prompt shapes {sa[0]} vs {sb[0]}")
check(sa[1] == sb[1], "prompt values differ")
print("shots (both):", shots_server)
for name, server, cli in pairs:
    print(f"{name}: server {100 * server:.2f}%  provp-train {cli:.2f}%")
print("selected epoch:", offline["training"]["selected_epoch"], " prompts", sa[0], "bit-identical")
EOF
echo "same run e2e: all checks passed"
