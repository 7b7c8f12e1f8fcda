#!/usr/bin/env bash
# Goodput under a flood (issue 14; run by hand, reported; not a test). The
# real provp-server (tiny CLIP fixture, one torch thread) is pinned to one
# core and bench/server's load generator to the other, all on 127.0.0.1:
#   1. unflooded: C clients with N images per request for S seconds;
#   2. flooded: the same clients while F more clients send 64-image
#      requests as fast as they are answered or refused (the queue is
#      --max-queue-images Q images, so most flood requests are refused).
# Prints the runs' lines and two ratios to the unflooded rate: the goodput
# of everything answered during the flood (normal + flood images), and the
# normal clients' share alone. Needs 2 cores and taskset (util-linux).
#   bench/overload/flood.sh BUILD_DIR [SHARED_DIR]
set -euo pipefail
BUILD=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${2:-${PROVP_SHARED_DIR:-$ROOT/../shared}}
CLIENTS=${FLOOD_CLIENTS:-4} PER=${FLOOD_IMAGES:-1} SECS=${FLOOD_SECONDS:-15}
FLOODERS=${FLOOD_FLOODERS:-32} QUEUE=${FLOOD_QUEUE_IMAGES:-256}
SERVER=$BUILD/server/provp-server LOAD=$BUILD/bench/server/provp_server_bench
[ "$(nproc)" -ge 2 ] || { echo "flood.sh: needs 2 cores" >&2; exit 2; }
T=$(mktemp -d)
cleanup() { [ -n "${SERVER_PID:-}" ] && kill -KILL "$SERVER_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
taskset -c 1 "$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" \
  --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" --data-dir "$T/data" \
  --listen 127.0.0.1:0 --port-file "$T/port" --metrics-port -1 --torch-threads 1 \
  --max-queue-images "$QUEUE" > "$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; sleep 0.2; done
[ -s "$T/port" ] || { cat "$T/server.log"; echo "flood.sh: server did not start" >&2; exit 1; }
TARGET=127.0.0.1:$(cat "$T/port")
normal() { taskset -c 0 "$LOAD" --target "$TARGET" --clients "$CLIENTS" --images-per-request "$PER" --seconds "$1"; }
rate() { grep -o '[0-9.]* images/s' "$1" | head -1 | cut -d' ' -f1; }
normal 3 > /dev/null  # warm-up
normal "$SECS" > "$T/unflooded"
taskset -c 0 "$LOAD" --target "$TARGET" --clients "$FLOODERS" --images-per-request 64 \
  --seconds $((SECS + 4)) > "$T/flood" &
FLOOD_PID=$!
sleep 2
normal "$SECS" > "$T/flooded"
wait "$FLOOD_PID"
echo "unflooded: $(grep 'images/request' "$T/unflooded")"
echo "flooded:   $(grep 'images/request' "$T/flooded")"
echo "flood:     $(grep 'images/request' "$T/flood")"
awk -v a="$(rate "$T/unflooded")" -v b="$(rate "$T/flooded")" -v f="$(rate "$T/flood")" 'BEGIN {
  printf "goodput (all answered images) during the flood: %.1f / %.1f images/s = %.2f\n", b + f, a, (b + f) / a
  printf "goodput of the normal clients alone: %.1f / %.1f images/s = %.2f (the queue is first come, first served)\n", b, a, b / a }'
uptime
