#!/usr/bin/env bash
# Scale-out benchmark (run by hand, reported; not a test). On 127.0.0.1,
# with a PostgreSQL started by scripts/pg-test-server.sh:
#   1. Classify throughput of one inference replica, then of two, driven by
#      provp_server_bench --target with round_robin over the replicas
#      (each replica gets --torch-threads T so they do not fight over cores).
#   2. Time from a job's SUCCEEDED (trained on a tuning replica) to the first
#      successful Classify with its prompt set on an inference replica that
#      never loaded it (it loads on first use from the shared folder).
# Prints `uptime` with the figures: compare the ratio, not absolute rates.
#   replicas_bench.sh BUILD_DIR [--model M] [--vocab V] [--seconds S]
#     [--clients C] [--images-per-request N] [--torch-threads T]
set -euo pipefail
BUILD=$1; shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${PROVP_SHARED_DIR:-$ROOT/../shared}
MODEL=$SHARED/fixtures/tiny/openai.safetensors
VOCAB=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
SECONDS_PER=10 CLIENTS=8 PER_REQUEST=16 THREADS=1
while [ $# -gt 0 ]; do
  case $1 in
    --model) MODEL=$2; shift 2 ;;
    --vocab) VOCAB=$2; shift 2 ;;
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --images-per-request) PER_REQUEST=$2; shift 2 ;;
    --torch-threads) THREADS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
SERVER=$BUILD/server/provp-server PROVP=$BUILD/client/provp LOAD=$BUILD/bench/server/provp_server_bench
T=$(mktemp -d); chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  bash "$ROOT/scripts/pg-test-server.sh" stop "$T/pg" || true
  rm -rf "$T"
}
trap cleanup EXIT
URI=$(bash "$ROOT/scripts/pg-test-server.sh" start "$T/pg")

start() {  # start NAME ROLE
  "$SERVER" --model "$MODEL" --vocab "$VOCAB" --data-dir "$T/shared" --store "$URI" --role "$2" \
    --listen 127.0.0.1:0 --port-file "$T/$1.port" --metrics-port -1 --torch-threads "$THREADS" \
    --prompt-set-refresh-seconds 2 > "$T/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do [ -s "$T/$1.port" ] && return 0; sleep 0.1; done
  echo "replica $1 did not start" >&2; exit 1
}
addr() { echo "127.0.0.1:$(cat "$T/$1.port")"; }
now() { date +%s.%N; }

echo "== classify throughput ($CLIENTS clients, $PER_REQUEST images/request, ${SECONDS_PER}s, torch threads $THREADS per replica)"
start R1 inference
echo "-- one replica:  $(uptime)"
"$LOAD" --target "ipv4:$(addr R1)" --clients "$CLIENTS" --seconds "$SECONDS_PER" \
  --images-per-request "$PER_REQUEST" | tee "$T/one.txt"
start R2 inference
echo "-- two replicas: $(uptime)"
"$LOAD" --target "ipv4:$(addr R1),$(addr R2)" --clients "$CLIENTS" --seconds "$SECONDS_PER" \
  --images-per-request "$PER_REQUEST" | tee "$T/two.txt"
one=$(grep -o '[0-9.]* images/s' "$T/one.txt" | head -1 | cut -d' ' -f1)
two=$(grep -o '[0-9.]* images/s' "$T/two.txt" | head -1 | cut -d' ' -f1)
echo "two/one replicas: $(awk "BEGIN{printf \"%.2f\", $two / $one}")"

echo "== prompt set trained on one replica, usable on another"
start W tuning
# A small dataset from the preprocess fixtures (4 classes, 3 images each).
PRE=$SHARED/fixtures/preprocess
IMAGES=("$PRE/rgb_300x200.png" "$PRE/rgb_640x480_q90.jpg" "$PRE/gray_100x150.png" "$PRE/wide_1000x60.jpg" "$PRE/tiny_23x17.png" "$PRE/rgba_256x256.png")
i=0
for cls in alpha beta gamma delta; do
  for split in train test; do
    mkdir -p "$T/ds/$split/$cls"
    for k in 0 1 2; do src=${IMAGES[$(( (i + k) % 6 ))]}; cp "$src" "$T/ds/$split/$cls/$k.${src##*.}"; done
  done
  i=$((i + 1))
done
PROVP_ADDRESS=$(addr R1) "$PROVP" datasets upload "$T/ds" --id bench-ds --novel auto --min-shots 2 > /dev/null
PROVP_ADDRESS=$(addr R1) "$PROVP" tune --dataset bench-ds --shots 2 --epochs 5 --num-prompts 4 --id bench-job --detach > /dev/null 2>&1
until PROVP_ADDRESS=$(addr R2) "$PROVP" jobs get bench-job 2>/dev/null | grep -q SUCCEEDED; do sleep 0.05; done
t_done=$(now)
until PROVP_ADDRESS=$(addr R2) "$PROVP" classify --prompt-set bench-job --classes "alpha,beta" "$PRE/rgb_300x200.png" > /dev/null 2>&1; do sleep 0.05; done
t_usable=$(now)
t0=$(now); PROVP_ADDRESS=$(addr R2) "$PROVP" classify --prompt-set bench-job --classes "alpha,beta" "$PRE/rgb_300x200.png" > /dev/null; t1=$(now)
echo "SUCCEEDED (trained on W) -> first classify OK on R2 (never loaded it): $(awk "BEGIN{printf \"%.3f\", $t_usable - $t_done}") s (includes one provp CLI start; a warm classify on R2 then took $(awk "BEGIN{printf \"%.3f\", $t1 - $t0}") s end to end)"
echo "$(uptime)"
