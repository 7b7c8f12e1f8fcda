#!/usr/bin/env bash
# The HTTP/JSON door of the real provp-server binary (tiny CLIP fixture),
# called with curl as its docs show: health, 401 without a key, a JSON
# classification with a base64 image whose top-k equals `provp classify
# --json` over gRPC, embeddings, bad JSON (400), a body over
# --max-message-bytes (413), the calls counted on /metrics, SIGTERM exit 0.
# Everything on 127.0.0.1; every wait is bounded. Exit 77 (skipped) when
# curl or python3 is missing.
#   http_e2e_test.sh PROVP_SERVER PROVP_CLI SHARED_DIR
set -euo pipefail
SERVER=$1 PROVP=$2 SHARED=$3
command -v curl > /dev/null || { echo "curl not installed: skipped"; exit 77; }
command -v python3 > /dev/null || { echo "python3 not installed: skipped"; exit 77; }
T=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/server.log" ] && tail -20 "$T/server.log" >&2; exit 1; }
KEY=cls-key-0123456789
printf 'classify %s app\n' "$KEY" > "$T/keys"
MAX=2097152

"$SERVER" --model "$SHARED/fixtures/tiny/openai.safetensors" --vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" \
  --data-dir "$T/data" --listen 127.0.0.1:0 --port-file "$T/port" \
  --metrics-port 0 --metrics-bind 127.0.0.1 --metrics-port-file "$T/metrics_port" \
  --http-port 0 --http-bind 127.0.0.1 --http-port-file "$T/http_port" \
  --max-message-bytes $MAX --api-keys "$T/keys" > "$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; kill -0 $SERVER_PID || fail "server exited"; sleep 0.2; done
[ -s "$T/port" ] && [ -s "$T/http_port" ] || fail "server did not report its ports"
grep -q "http_port=0 http_bind=127.0.0.1" "$T/server.log" || fail "no http line in the configuration summary"
URL=http://127.0.0.1:$(cat "$T/http_port")
export PROVP_ADDRESS=127.0.0.1:$(cat "$T/port") PROVP_API_KEY=$KEY

# curl -s -o BODY -w '%{http_code}' ...: prints the status.
call() { local out=$1; shift; curl -sS -o "$out" -w '%{http_code}' "$@"; }

[ "$(call "$T/health" "$URL/v1/health")" = 200 ] || fail "health: $(cat "$T/health")"
grep -q '"status":"SERVING"' "$T/health" || fail "health body: $(cat "$T/health")"

IMG=$SHARED/fixtures/preprocess/rgb_300x200.png
printf '{"images": [{"encoded": "%s"}], "inline_classes": {"names": ["dog", "cat", "sunflower"]}, "top_k": 2}' \
  "$(base64 -w0 "$IMG")" > "$T/classify.json"
code=$(call "$T/out" -X POST "$URL/v1/classify" --data-binary @"$T/classify.json")
[ "$code" = 401 ] || fail "classify without a key gave $code"
grep -q MISSING_CREDENTIALS "$T/out" || fail "401 body: $(cat "$T/out")"

code=$(call "$T/http.json" -X POST "$URL/v1/classify" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' --data-binary @"$T/classify.json")
[ "$code" = 200 ] || fail "classify gave $code: $(cat "$T/http.json")"
"$PROVP" --json classify --classes "dog,cat,sunflower" --top-k 2 "$IMG" > "$T/grpc.json" || fail "provp classify"
python3 - "$T/http.json" "$T/grpc.json" <<'EOF' || fail "HTTP and gRPC top-k differ"
import json, sys
def top(path):
    doc = json.load(open(path))
    return [[(l["label"], round(l["score"], 5)) for l in r["prediction"]["labels"]] for r in doc["results"]]
http, grpc = top(sys.argv[1]), top(sys.argv[2])
print("http", http, "grpc", grpc)
sys.exit(0 if http == grpc and len(http[0]) == 2 else 1)
EOF

code=$(call "$T/out" -X POST "$URL/v1/embed-texts" -H "X-Api-Key: $KEY" -d '{"texts": ["a dog", "a cat"]}')
[ "$code" = 200 ] || fail "embed-texts gave $code: $(cat "$T/out")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["embeddings"]) == 2 and len(d["embeddings"][0]["values"]) > 0' "$T/out" \
  || fail "embed-texts body: $(cat "$T/out")"
[ "$(call "$T/out" -H "X-Api-Key: $KEY" "$URL/v1/server-info")" = 200 ] || fail "server-info: $(cat "$T/out")"
grep -q "\"max_message_bytes\":\"$MAX\"" "$T/out" || fail "server-info body: $(cat "$T/out")"

code=$(call "$T/out" -X POST "$URL/v1/classify" -H "X-Api-Key: $KEY" -d '{"images": [')
[ "$code" = 400 ] || fail "bad JSON gave $code"
grep -q INVALID_JSON "$T/out" || fail "bad JSON body: $(cat "$T/out")"

head -c $((MAX + 1)) /dev/zero | tr '\0' ' ' > "$T/big.json"
code=$(call "$T/out" -X POST "$URL/v1/classify" -H "X-Api-Key: $KEY" -H 'Expect:' --data-binary @"$T/big.json" || true)
[ "$code" = 413 ] || fail "an oversized body gave $code"
grep -q REQUEST_TOO_LARGE "$T/out" || fail "413 body: $(cat "$T/out")"

curl -sS "http://127.0.0.1:$(cat "$T/metrics_port")/metrics" > "$T/metrics" || fail "scrape"
grep -qE '^provp_http_requests_total\{code="200",route="classify"\} 1$' "$T/metrics" \
  || fail "HTTP classify not counted: $(grep provp_http_requests_total "$T/metrics")"
grep -qE '^provp_http_requests_total\{code="413",route="classify"\} 1$' "$T/metrics" || fail "413 not counted"
# Two OK Classify calls reached gRPC: curl's and the CLI's.
grep -E '^grpc_server_handled_total\{.*grpc_method="Classify".*\} ' "$T/metrics" | grep 'grpc_code="OK"' \
  | grep -qE ' 2$' || fail "grpc_server_handled_total: $(grep 'grpc_method="Classify"' "$T/metrics")"

kill -TERM $SERVER_PID
for _ in $(seq 1 150); do kill -0 $SERVER_PID 2>/dev/null || break; sleep 0.2; done
kill -0 $SERVER_PID 2>/dev/null && fail "server still running 30 s after SIGTERM"
wait $SERVER_PID; rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || fail "server exit code $rc after SIGTERM"
echo "http e2e: all checks passed"
