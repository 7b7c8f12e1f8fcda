#!/usr/bin/env bash
# Replicas of the real provp-server (tiny CLIP) sharing one real PostgreSQL
# 15 and one file store (--file-store, the ReadWriteMany volume) on
# 127.0.0.1, each with a data folder of its own, driven by the provp CLI:
#   1. upload on A (inference); a job created on A is claimed by B (the only
#      runner); a cancel sent to A stops it on B;
#   2. a second job on B is SIGKILLed mid-job; C resumes it after the lease
#      from its last checkpoint (restart_count 1, events intact) and finishes;
#      A and C classify with the finished prompt set (A loads it on first use);
#   3. deleting and re-importing the prompt set on C is seen by A within the
#      refresh time (1 s here);
#   4. six jobs with two runners (B2, C): each job runs exactly once;
#   5. ten kill trials: the runner of a job is SIGKILLed at a random point
#      and replaced; every acknowledged job ends SUCCEEDED, event ids stay
#      contiguous, nothing is lost;
#   6. a prompt-set file damaged in the file store is DATA_LOSS on the
#      replica that loads it, which keeps serving.
# PostgreSQL comes from the provp_postgres ctest fixture (PROVP_TEST_PG_DIR)
# or is started here by scripts/pg-test-server.sh.
#   multi_replica_test.sh PROVP_SERVER PROVP_CLI SHARED_DIR REPO_ROOT
set -euo pipefail
SERVER=$1 PROVP=$2 SHARED=$3 ROOT=$4
T=$(mktemp -d)
chmod 755 "$T"
declare -A PIDS=()
OWN_PG=""
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "$OWN_PG" ] && bash "$ROOT/scripts/pg-test-server.sh" stop "$OWN_PG" || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$T"/*.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done
  exit 1
}
LEASE=3

if [ -n "${PROVP_TEST_PG_DIR:-}" ] && [ -s "$PROVP_TEST_PG_DIR/uri" ]; then
  ADMIN=$(cat "$PROVP_TEST_PG_DIR/uri")
else
  OWN_PG=$T/pg
  ADMIN=$(bash "$ROOT/scripts/pg-test-server.sh" start "$OWN_PG")
fi
DB=multireplica_$$_$RANDOM
psql -q "$ADMIN" -c "CREATE DATABASE $DB" || fail "create database"
URI=${ADMIN%/*}/$DB
sql() { psql -qtA "$URI" -c "$1"; }

# start NAME ROLE: a replica on a free port, sharing $URI and the file store
# $T/shared/files; its data folder ($T/local-NAME) is its own, so whatever
# another replica reads it reads by content key from the file store.
start() {
  local name=$1 role=$2
  rm -f "$T/$name.port"
  "$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" \
    --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" --data-dir "$T/local-$name" \
    --file-store "$T/shared/files" --store "$URI" --role "$role" --job-lease-seconds $LEASE --prompt-set-refresh-seconds 1 \
    --listen 127.0.0.1:0 --port-file "$T/$name.port" --metrics-port -1 --torch-threads 1 \
    >> "$T/$name.log" 2>&1 &
  PIDS[$name]=$!
  for _ in $(seq 1 300); do
    [ -s "$T/$name.port" ] && return 0
    kill -0 "${PIDS[$name]}" 2>/dev/null || fail "replica $name exited"
    sleep 0.1
  done
  fail "replica $name did not start"
}
at() { local name=$1; shift; PROVP_ADDRESS=127.0.0.1:$(cat "$T/$name.port") "$PROVP" "$@"; }
kill9() { kill -KILL "${PIDS[$1]}"; wait "${PIDS[$1]}" 2>/dev/null || true; unset "PIDS[$1]"; }
# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" > /dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}
state_is() { [ "$(sql "SELECT state FROM jobs WHERE id = '$1'")" = "$2" ]; }
owner_of() { sql "SELECT lease_owner FROM jobs WHERE id = '$1'"; }
has_checkpoint_in_store() {
  [ "$(sql "SELECT count(*) FROM events WHERE job_id = '$1' AND position(convert_to('checkpoint written', 'UTF8') in data) > 0")" -gt 0 ]
}
# The replica (by pid in its lease owner "host:pid:rand") running job $1.
runner_of() {
  local owner pid
  owner=$(owner_of "$1"); pid=$(echo "$owner" | cut -d: -f2)
  for name in "${!PIDS[@]}"; do [ "${PIDS[$name]}" = "$pid" ] && { echo "$name"; return 0; }; done
  return 1
}
# Event ids of job $1 are 1..n with no gap or duplicate.
events_contiguous() {
  local n max
  n=$(sql "SELECT count(*) FROM events WHERE job_id = '$1'")
  max=$(sql "SELECT coalesce(max(id), 0) FROM events WHERE job_id = '$1'")
  [ "$n" = "$max" ] && [ "$n" -gt 0 ]
}

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
IMG=$PRE/rgb_300x200.png

# --- 1. upload on A, a job claimed by B, cancel sent to A stops it on B ----
start A inference
start B all
at A datasets upload "$T/ds" --id shared-ds --novel auto --min-shots 2 > "$T/out" 2>&1 || fail "upload on A: $(cat "$T/out")"
at B datasets get shared-ds | grep -q ACTIVE || fail "B does not see the dataset uploaded on A"
at A tune --dataset shared-ds --shots 2 --epochs 1000 --num-prompts 4 --id cancel-me --detach > /dev/null 2>&1 || fail "create cancel-me"
wait_for 30 "cancel-me RUNNING" state_is cancel-me RUNNING
[ "$(runner_of cancel-me)" = B ] || fail "cancel-me is not leased by B: $(owner_of cancel-me)"
t0=$(date +%s.%N)
at A jobs cancel cancel-me > /dev/null || fail "cancel on A"
wait_for 20 "cancel-me CANCELLED" state_is cancel-me CANCELLED
t1=$(date +%s.%N)
grep -q 'job_id=cancel-me .*message="job cancelled"' "$T/B.log" || fail "B did not finish cancel-me as cancelled"
echo "cancel on A stopped the job on B in $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s"

# --- 2. SIGKILL B mid-job; C resumes from the checkpoint after the lease ---
# An epoch of the tiny model takes ~10 ms on an idle machine, so the job is
# long (1000 epochs) and B is killed as soon as the store holds its first
# checkpoint event; C starts only after the kill (its start-up time used to
# race a 150-epoch job, which CI's idle machine finished first).
at A tune --dataset shared-ds --shots 2 --epochs 1000 --num-prompts 4 --id resume-me --detach > /dev/null 2>&1 || fail "create resume-me"
wait_for 30 "resume-me RUNNING on B" state_is resume-me RUNNING
[ "$(runner_of resume-me)" = B ] || fail "resume-me is not leased by B"
wait_for 60 "a checkpoint of resume-me" has_checkpoint_in_store resume-me
kill9 B
t_kill=$(date +%s.%N)
state_is resume-me RUNNING || fail "resume-me finished before the kill; make it longer"
before=$(sql "SELECT count(*) FROM events WHERE job_id = 'resume-me'")
start C all
# The takeover event, read straight from the store (its message is a plain
# string inside the stored event).
restarted() {
  [ "$(sql "SELECT count(*) FROM events WHERE job_id = 'resume-me' AND position(convert_to('stopped renewing its lease', 'UTF8') in data) > 0")" = 1 ]
}
wait_for $((LEASE * 10)) "resume-me taken over" restarted
t_taken=$(date +%s.%N)
echo "SIGKILL of B -> taken over by C in $(awk "BEGIN{printf \"%.2f\", $t_taken - $t_kill}") s (lease $LEASE s)"
wait_for 600 "resume-me SUCCEEDED" state_is resume-me SUCCEEDED
at A --json jobs get resume-me > "$T/out"
grep -q '"restart_count": *1' "$T/out" || fail "restart_count is not 1: $(cat "$T/out")"
at A jobs events resume-me > "$T/events"
grep -q "SERVER_RESTARTED" "$T/events" || fail "no SERVER_RESTARTED event"
grep "SERVER_RESTARTED" "$T/events" | grep -q "resumes from its last epoch checkpoint (after epoch [1-9]" || fail "not resumed from a checkpoint: $(grep SERVER_RESTARTED "$T/events")"
after=$(sql "SELECT count(*) FROM events WHERE job_id = 'resume-me'")
[ "$after" -gt "$before" ] || fail "events lost"
events_contiguous resume-me || fail "event ids of resume-me have gaps"
grep -q 'job_id=resume-me .*message="training started"' "$T/C.log" || fail "C did not run resume-me"
t_done=$(date +%s.%N)
echo "SIGKILL of B -> finished on C in $(awk "BEGIN{printf \"%.2f\", $t_done - $t_kill}") s (lease $LEASE s)"

# Classify with the finished prompt set on C (it trained it) and on A
# (never loaded it: loads on first use from the shared folder).
at C classify --prompt-set resume-me --classes "sunflower,golden retriever" --top-k 1 "$IMG" > "$T/outC" || fail "classify on C: $(cat "$T/outC")"
grep -qE '^ +[0-9.]+%  (sunflower|golden retriever)$' "$T/outC" || fail "C prediction: $(cat "$T/outC")"
at A classify --prompt-set resume-me --classes "sunflower,golden retriever" --top-k 1 "$IMG" > "$T/outA" || fail "classify on A: $(cat "$T/outA")"
cmp -s "$T/outC" "$T/outA" || fail "A and C disagree: $(cat "$T/outC") vs $(cat "$T/outA")"

# --- 3. delete and re-import on C, seen by A within the refresh time ----
at C prompt-sets export resume-me -o "$T/resume-me.provp" > /dev/null || fail "export on C"
at C prompt-sets delete resume-me > /dev/null || fail "delete on C"
sleep 1.2
set +e; at A classify --prompt-set resume-me --classes "a,b" "$IMG" > "$T/out" 2>&1; rc=$?; set -e
[ "$rc" != 0 ] && grep -q NOT_FOUND "$T/out" || fail "A still serves a deleted prompt set: $(cat "$T/out")"
at C prompt-sets import "$T/resume-me.provp" --id resume-me --load > /dev/null || fail "re-import on C"
sleep 1.2
at A classify --prompt-set resume-me --classes "sunflower,golden retriever" --top-k 1 "$IMG" > "$T/outA2" || fail "A does not see the re-imported set: $(cat "$T/outA2")"
cmp -s "$T/outC" "$T/outA2" || fail "A after re-import disagrees: $(cat "$T/outC") vs $(cat "$T/outA2")"

# --- 4. two runners, six jobs: each runs exactly once -------------------
start B2 all
for k in 1 2 3 4 5 6; do
  at A tune --dataset shared-ds --shots 2 --epochs 20 --num-prompts 4 --id pair-$k --detach > /dev/null 2>&1 || fail "create pair-$k"
done
for k in 1 2 3 4 5 6; do wait_for 120 "pair-$k SUCCEEDED" state_is pair-$k SUCCEEDED; done
for k in 1 2 3 4 5 6; do
  n=$(cat "$T/B2.log" "$T/C.log" | grep -c "job_id=pair-$k .*message=\"training started\"" || true)
  [ "$n" = 1 ] || fail "pair-$k started $n times"
done
echo "six jobs, two runners: each started once"

# --- 5. ten kill trials -------------------------------------------------
killed=0
for trial in $(seq 1 10); do
  at A tune --dataset shared-ds --shots 2 --epochs 60 --num-prompts 4 --id trial-$trial --detach > /dev/null 2>&1 || fail "create trial-$trial"
  wait_for 60 "trial-$trial RUNNING" state_is trial-$trial RUNNING
  sleep "0.$((RANDOM % 10))"
  victim=$(runner_of trial-$trial || true)
  if [ -n "$victim" ] && state_is trial-$trial RUNNING; then
    kill9 "$victim"
    killed=$((killed + 1))
    start "$victim" all
  fi
done
for trial in $(seq 1 10); do wait_for 180 "trial-$trial SUCCEEDED" state_is trial-$trial SUCCEEDED; done
n=$(sql "SELECT count(*) FROM jobs WHERE id LIKE 'trial-%' AND state = 'SUCCEEDED'")
[ "$n" = 10 ] || fail "only $n of 10 trial jobs succeeded"
for trial in $(seq 1 10); do
  events_contiguous trial-$trial || fail "event ids of trial-$trial have gaps"
  at A prompt-sets get trial-$trial > /dev/null || fail "prompt set of trial-$trial missing"
done
echo "kill trials: $killed of 10 runners SIGKILLed mid-job, 10/10 jobs SUCCEEDED"

# --- 6. a damaged file in the file store: DATA_LOSS, not a crash --------
# A (inference) has not loaded trial-10: it reads the file on first use.
at A --json prompt-sets get trial-10 > "$T/out"
key=$(grep -o '"content_key": *"sha256:[0-9a-f]*"' "$T/out" | grep -o 'sha256:[0-9a-f]*' || true)
[ -n "$key" ] || fail "no content_key: $(cat "$T/out")"
hex=${key#sha256:}
blob=$T/shared/files/sha256/${hex:0:2}/$hex
[ -f "$blob" ] || fail "$key is not at $blob"
printf 'damaged' | dd of="$blob" bs=1 seek=10 conv=notrunc status=none
set +e; at A classify --prompt-set trial-10 --classes "a,b" "$IMG" > "$T/out" 2>&1; rc=$?; set -e
[ "$rc" != 0 ] && grep -q DATA_LOSS "$T/out" || fail "a damaged prompt set is not DATA_LOSS: $(cat "$T/out")"
kill -0 "${PIDS[A]}" || fail "A died reading a damaged file"
at A classify --prompt-set trial-9 --classes "sunflower,golden retriever" --top-k 1 "$IMG" > "$T/out" 2>&1 || fail "A stopped serving: $(cat "$T/out")"
# No replica keeps datasets or prompt sets in its own folder.
for d in "$T"/local-*; do
  left=$(find "$d/datasets" "$d/prompt_sets" -mindepth 1 2>/dev/null | head -3)
  [ -z "$left" ] || fail "files outside the file store in $d: $left"
done
echo "damaged file: DATA_LOSS on A, which keeps serving"
echo "multireplica: all checks passed"
