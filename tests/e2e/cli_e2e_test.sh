#!/usr/bin/env bash
# The `provp` CLI against the real provp-server binary with the tiny CLIP
# fixture, as a new user drives it: health, zero-shot and novel-class
# classification, API-key scopes, dataset upload, a tuning job followed to the
# end, events, prompt-set export/import, cancel, bad inputs, SIGTERM exit 0.
# Everything on 127.0.0.1; every wait is bounded.
#   cli_e2e_test.sh PROVP_SERVER PROVP_CLI SHARED_DIR
set -euo pipefail
SERVER=$1 PROVP=$2 SHARED=$3
T=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/server.log" ] && tail -20 "$T/server.log" >&2; exit 1; }
# expect_fail "<substring of stderr>" cmd...: exit code 1 and the reason.
expect_fail() {
  local want=$1; shift
  set +e; "$@" > "$T/out" 2> "$T/err"; local rc=$?; set -e
  [ "$rc" = 1 ] || fail "expected exit 1 from: $* (got $rc): $(cat "$T/err")"
  grep -q -- "$want" "$T/err" || fail "expected '$want' from: $*; got: $(cat "$T/err")"
}

# A small class-folder dataset from the preprocess fixture images.
PRE=$SHARED/fixtures/preprocess
IMAGES=("$PRE/rgb_300x200.png" "$PRE/rgb_640x480_q90.jpg" "$PRE/gray_100x150.png" "$PRE/wide_1000x60.jpg" "$PRE/tiny_23x17.png" "$PRE/rgba_256x256.png")
i=0
for cls in alpha beta gamma delta; do
  for split in train test; do
    mkdir -p "$T/ds/$split/$cls"
    for k in 0 1 2; do
      src=${IMAGES[$(( (i + k) % 6 ))]}
      cp "$src" "$T/ds/$split/$cls/$k.${src##*.}"
    done
  done
  i=$((i + 1))
done
printf 'admin admin-key-0123456789 ops\nclassify cls-key-0123456789 app\n' > "$T/keys"

"$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
  --data-dir "$T/data" --listen 127.0.0.1:0 --port-file "$T/port" --metrics-port -1 \
  --api-keys "$T/keys" > "$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; kill -0 $SERVER_PID || fail "server exited"; sleep 0.2; done
[ -s "$T/port" ] || fail "server did not report its port"
export PROVP_ADDRESS=127.0.0.1:$(cat "$T/port")
unset PROVP_API_KEY PROVP_API_KEY_FILE
grep -q "admin-key-0123456789\|cls-key-0123456789" "$T/server.log" && fail "an API key appears in the server log"

"$PROVP" health --wait 60 | grep -qx SERVING || fail "health is not SERVING"
IMG=$PRE/rgb_300x200.png

# Keys and scopes.
expect_fail UNAUTHENTICATED "$PROVP" classify --classes "dog,cat" "$IMG"
expect_fail UNAUTHENTICATED "$PROVP" --api-key wrong-key classify --classes "dog,cat" "$IMG"
export PROVP_API_KEY=cls-key-0123456789
"$PROVP" classify --classes "dog,cat,sunflower" --top-k 2 "$IMG" > "$T/out" || fail "zero-shot classify"
grep -qE '^ +[0-9.]+%  (dog|cat|sunflower)$' "$T/out" || fail "no prediction line: $(cat "$T/out")"
expect_fail PERMISSION_DENIED "$PROVP" datasets list

# Bad inputs: a non-image inside a batch fails only its own line.
set +e; "$PROVP" classify --classes "dog,cat" "$SHARED/fixtures/tiny/config.json" "$IMG" > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" = 1 ] || fail "a bad image in a batch must give exit 1"
grep -q "config.json	error: " "$T/out" || fail "no per-image error: $(cat "$T/out")"
grep -q "rgb_300x200.png" "$T/out" && grep -qE '^ +[0-9.]+%' "$T/out" || fail "the good image was not classified"
expect_fail NOT_FOUND "$PROVP" classify --prompt-set no-such-set --classes "dog,cat" "$IMG"
expect_fail INVALID_ARGUMENT "$PROVP" classify --classes "dog,dog" "$IMG"

# Datasets and a tuning job (admin key).
export PROVP_API_KEY=admin-key-0123456789
"$PROVP" datasets upload "$T/ds" --id e2e-ds --novel auto --min-shots 2 > "$T/out" 2> "$T/err" || fail "upload: $(cat "$T/err")"
grep -q "datasets/e2e-ds  ACTIVE  classes=4 (novel 2)" "$T/out" || fail "upload result: $(cat "$T/out")"
expect_fail INVALID_ARGUMENT "$PROVP" datasets upload "$T/ds" --id "Bad Id!" 
# Run inside a trace (OpenTelemetry's TRACEPARENT environment carrier): the
# job and its events keep the trace context of the call that created it.
TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
TRACEPARENT=$TP "$PROVP" tune --dataset e2e-ds --shots 2 --epochs 2 --num-prompts 4 --id job1 > "$T/out" 2> "$T/err" || fail "tune: $(cat "$T/err")"
grep -q "tuningJobs/job1  SUCCEEDED" "$T/out" || fail "job did not succeed: $(cat "$T/out")"
grep -q "base accuracy" "$T/out" && grep -q "novel accuracy" "$T/out" && grep -q "harmonic mean" "$T/out" || fail "no evaluation"
"$PROVP" jobs list --state SUCCEEDED | grep -q "tuningJobs/job1" || fail "jobs list"
"$PROVP" jobs events job1 | grep -q "METRICS" || fail "no METRICS events"
"$PROVP" jobs events job1 | grep "STATE_CHANGED" | grep -q "traceparent=$TP" || fail "events lack the traceparent: $("$PROVP" jobs events job1 | head -3)"
"$PROVP" jobs watch job1 | grep -q SUCCEEDED || fail "watch of a finished job"
"$PROVP" prompt-sets list | grep -q "promptSets/job1" || fail "prompt set missing"

# The new prompt set on novel classes (names never trained on).
export PROVP_API_KEY=cls-key-0123456789
"$PROVP" classify --prompt-set job1 --classes "sunflower,golden retriever" --top-k 1 "$IMG" > "$T/out" || fail "novel classify"
grep -qE '^ +[0-9.]+%  (sunflower|golden retriever)$' "$T/out" || fail "novel prediction: $(cat "$T/out")"
export PROVP_API_KEY=admin-key-0123456789

# Export and import under a new id.
"$PROVP" prompt-sets export job1 -o "$T/job1.provp" > /dev/null || fail "export"
[ -s "$T/job1.provp" ] || fail "empty export"
"$PROVP" prompt-sets import "$T/job1.provp" --id job1-copy --load > "$T/out" || fail "import"
grep -q "promptSets/job1-copy" "$T/out" || fail "import result: $(cat "$T/out")"

# Cancel a long job.
"$PROVP" tune --dataset e2e-ds --shots 2 --epochs 500 --id job2 --detach > /dev/null 2>&1 || fail "create job2"
"$PROVP" jobs cancel job2 > /dev/null || fail "cancel"
for _ in $(seq 1 150); do "$PROVP" jobs get job2 | grep -q CANCELLED && break; sleep 0.2; done
"$PROVP" jobs get job2 | grep -q "CANCELLED" || fail "job2 not cancelled: $("$PROVP" jobs get job2)"
expect_fail FAILED_PRECONDITION "$PROVP" jobs cancel job1

# Delete: a job that has not ended is refused; ended ones go with their
# events, and the prompt set a deleted job produced stays.
"$PROVP" tune --dataset e2e-ds --shots 2 --epochs 500 --id job3 --detach > /dev/null 2>&1 || fail "create job3"
expect_fail JOB_NOT_ENDED "$PROVP" jobs delete job3
"$PROVP" jobs cancel job3 > /dev/null || fail "cancel job3"
"$PROVP" jobs delete job2 | grep -q "deleted tuningJobs/job2" || fail "delete job2"
"$PROVP" jobs delete job1 > /dev/null || fail "delete job1"
expect_fail NOT_FOUND "$PROVP" jobs get job1
expect_fail NOT_FOUND "$PROVP" jobs events job1
expect_fail NOT_FOUND "$PROVP" jobs delete job1
"$PROVP" prompt-sets get job1 > /dev/null || fail "job1's prompt set went with the job"

# SIGTERM: drain and exit 0.
kill -TERM $SERVER_PID
for _ in $(seq 1 150); do kill -0 $SERVER_PID 2>/dev/null || break; sleep 0.2; done
kill -0 $SERVER_PID 2>/dev/null && fail "server still running 30 s after SIGTERM"
wait $SERVER_PID; rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || fail "server exit code $rc after SIGTERM"
echo "cli e2e: all checks passed"
