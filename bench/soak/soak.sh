#!/usr/bin/env bash
# Soak run (reported by hand, not a test; issue 14): the real provp-server on
# CPU with the tiny CLIP fixture, mixed traffic through the provp CLI
# (zero-shot and prompted classify, uploads, tuning jobs run to the end and
# cancelled, prompt-set export/import, dataset, prompt-set and job deletes),
# bench/server's load generator for steady unary Classify traffic and
# stream_client.py for StreamClassify streams (python3-grpcio and the
# build's Python stubs), for SOAK_MINUTES
# (default 30). The server's RSS, open file descriptors and threads are
# sampled every minute into $OUT/samples.tsv; errors other than the expected
# ones are counted per command. Everything on 127.0.0.1.
# SOAK_SERVER_ENV adds environment to the server alone, e.g.
# SOAK_SERVER_ENV=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2.
# SOAK_SMAPS_MINUTES=N copies the server's /proc/PID/smaps to
# $OUT/smaps-<minute>.txt every N minutes (which mapping grows, when RSS does).
# SOAK_TRAFFIC (default "cli load stream") picks the traffic sources, so a
# growth can be pinned on one of them.
#   bench/soak/soak.sh BUILD_DIR SHARED_DIR OUT_DIR
set -uo pipefail
BUILD=$1 SHARED=$2 OUT=$3
MINUTES=${SOAK_MINUTES:-30}
SERVER=$BUILD/server/provp-server PROVP=$BUILD/client/provp
LOADGEN=$BUILD/bench/server/provp_server_bench
mkdir -p "$OUT"; T=$(mktemp -d)
cleanup() { [ -n "${STREAM_PID:-}" ] && kill "$STREAM_PID" 2>/dev/null; [ -n "${SERVER_PID:-}" ] && kill -TERM "$SERVER_PID" 2>/dev/null; sleep 2;
            kill -KILL "$SERVER_PID" 2>/dev/null; [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
PRE=$SHARED/fixtures/preprocess
IMAGES=("$PRE/rgb_300x200.png" "$PRE/rgb_640x480_q90.jpg" "$PRE/gray_100x150.png" "$PRE/tiny_23x17.png")
for cls in alpha beta gamma delta; do for split in train test; do
  mkdir -p "$T/ds/$split/$cls"; for k in 0 1 2; do cp "${IMAGES[$k]}" "$T/ds/$split/$cls/$k.${IMAGES[$k]##*.}"; done
done; done
env ${SOAK_SERVER_ENV:-} "$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
  --data-dir "$T/data" --listen 127.0.0.1:0 --port-file "$T/port" --metrics-port -1 --torch-threads 1 \
  > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; sleep 0.2; done
export PROVP_ADDRESS=127.0.0.1:$(cat "$T/port")
"$PROVP" health --wait 120 >/dev/null || { echo "server not serving"; exit 1; }
sample() {
  local rss anon fds thr
  rss=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
  anon=$(awk '/RssAnon/ {print $2}' /proc/$SERVER_PID/status)
  thr=$(awk '/Threads/ {print $2}' /proc/$SERVER_PID/status)
  fds=$(ls /proc/$SERVER_PID/fd | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(date +%T)" "$rss" "$anon" "$fds" "$thr" >> "$OUT/samples.tsv"
  if [ -n "${SOAK_SMAPS_MINUTES:-}" ] && { [ "$1" = end ] || [ $(( $1 % SOAK_SMAPS_MINUTES )) -eq 0 ]; }; then
    cp "/proc/$SERVER_PID/smaps" "$OUT/smaps-$1.txt"
  fi
}
TRAFFIC=" ${SOAK_TRAFFIC:-cli load stream} "
wants() { [[ $TRAFFIC == *" $1 "* ]]; }
printf 'minute\ttime\trss_kib\tanon_kib\tfds\tthreads\n' > "$OUT/samples.tsv"
sample 0
# A steady classify stream next to the CLI traffic (if the load tool exists).
if wants load && [ -x "$LOADGEN" ]; then
  "$LOADGEN" --target "$PROVP_ADDRESS" --clients 1 --images-per-request 4 --seconds $((MINUTES * 60)) \
    > "$OUT/loadgen.log" 2>&1 &
  LOAD_PID=$!
fi
STUBS=$BUILD/proto/python
PY=/usr/bin/python3  # Debian's, which has python3-grpcio
if wants stream && "$PY" -c 'import grpc' 2>/dev/null && [ -d "$STUBS" ]; then
  "$PY" "$(dirname "$0")/stream_client.py" "$STUBS" "$PROVP_ADDRESS" $((MINUTES * 60)) "${IMAGES[@]}" \
    > "$OUT/stream.log" 2>&1 &
  STREAM_PID=$!
fi
declare -A ok err
run() { local name=$1; shift
  if "$@" > "$T/out" 2> "$T/err"; then ok[$name]=$(( ${ok[$name]:-0} + 1 ));
  else err[$name]=$(( ${err[$name]:-0} + 1 )); echo "$(date +%T) $name: $(head -c 300 "$T/err")" >> "$OUT/errors.log"; fi; }
end=$(( $(date +%s) + MINUTES * 60 )); next=$(( $(date +%s) + 60 )); minute=0; i=0
while [ "$(date +%s)" -lt "$end" ]; do
  if ! wants cli; then
    sleep 5
    if [ "$(date +%s)" -ge "$next" ]; then minute=$((minute + 1)); sample "$minute"; next=$((next + 60)); fi
    continue
  fi
  i=$((i + 1))
  run classify "$PROVP" classify --classes "dog,cat,sunflower" "${IMAGES[@]}"
  run upload "$PROVP" datasets upload "$T/ds" --id "soak-$i" --novel auto --min-shots 2
  if [ $((i % 3)) -eq 0 ]; then
    run tune "$PROVP" tune --dataset "soak-$i" --shots 2 --epochs 2 --num-prompts 4 --id "job-$i"
    run classify_prompted "$PROVP" classify --prompt-set "job-$i" --classes "alpha,beta,zebra" "${IMAGES[0]}"
    run export "$PROVP" prompt-sets export "job-$i" -o "$T/p.provp"
    run import "$PROVP" prompt-sets import "$T/p.provp" --id "copy-$i" --load
    run delete_set "$PROVP" prompt-sets delete "copy-$i"
    run delete_set "$PROVP" prompt-sets delete "job-$i"
    run delete_job "$PROVP" jobs delete "job-$i"
  else
    run tune_detached "$PROVP" tune --dataset "soak-$i" --shots 2 --epochs 500 --id "cancel-$i" --detach
    run cancel "$PROVP" jobs cancel "cancel-$i"
    # Followed until it has ended (CANCELLING -> CANCELLED), then deleted:
    # jobs, like prompt sets, count against the server's limits.
    # (watch exits 1 for any end but SUCCEEDED; CANCELLED is the one expected.)
    run watch_cancelled bash -c '"$1" jobs watch "$2" > /dev/null; "$1" jobs get "$2" | grep -q CANCELLED' \
      _ "$PROVP" "cancel-$i"
    run delete_job "$PROVP" jobs delete "cancel-$i"
  fi
  [ "$i" -gt 1 ] && run delete_dataset "$PROVP" datasets delete "soak-$((i - 1))"
  if [ "$(date +%s)" -ge "$next" ]; then minute=$((minute + 1)); sample "$minute"; next=$((next + 60)); fi
done
sample end
[ -n "${STREAM_PID:-}" ] && wait "$STREAM_PID"
{ echo "command ok err"; for k in "${!ok[@]}" "${!err[@]}"; do echo "$k"; done | sort -u |
  while read -r k; do echo "$k ${ok[$k]:-0} ${err[$k]:-0}"; done; } > "$OUT/counts.txt"
[ -f "$OUT/stream.log" ] && tail -1 "$OUT/stream.log" >> "$OUT/counts.txt"
cat "$OUT/samples.tsv" "$OUT/counts.txt"
