#!/usr/bin/env bash
# Builds the CPU image from the Dockerfile for real and runs it: buildah with
# chroot isolation (no Docker engine or registry is needed; BUILD-NOTES.md),
# a Debian 12 base made locally with debootstrap, then the image's own
# ENTRYPOINT + CMD with a model folder, an API key file and a data folder
# mounted, its HEALTHCHECK command, and one classification through the
# image's `provp` client. Long (a full build inside the image): run it by
# hand as root, not in CI. Traffic goes to 127.0.0.1 only (buildah run
# shares the host network; the image listens on its own ports 50051/9090).
#
#   sudo nice -n 10 scripts/check-image.sh            # PROVP_IMAGE_TAG=provp:cpu
#
# Exit 0 when the image built, reached SERVING, passed its HEALTHCHECK and
# classified; otherwise non-zero with the failing step named.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
SHARED="${PROVP_SHARED_DIR:-$REPO/../shared}"
TAG="${PROVP_IMAGE_TAG:-provp:cpu}"
MIRROR="${PROVP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="$(mktemp -d /tmp/provp-check-image.XXXXXX)"
step() { echo "check-image: $(date -u +%H:%M:%S) $*"; }
fail() { echo "check-image: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (buildah chroot isolation and debootstrap need it)"
for p in buildah debootstrap; do
  command -v "$p" >/dev/null || { step "installing $p"; apt-get install -y -qq "$p" >/dev/null; }
done
for f in "$SHARED/fixtures/tiny/openai_jit.pt" "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz"; do
  [ -f "$f" ] || fail "missing $f (set PROVP_SHARED_DIR)"
done

# 1. Local Debian 12 base images (no registry can be pulled from here). The
#    Dockerfile's CPU stages use debian:12 and debian:12-slim; one minbase
#    rootfs serves both.
if ! buildah inspect --type image localhost/debian:12 >/dev/null 2>&1; then
  step "debootstrap bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
  c=$(buildah from scratch)
  buildah add "$c" "$WORK/rootfs.tar" / >/dev/null
  buildah commit -q "$c" localhost/debian:12 >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$WORK/rootfs" "$WORK/rootfs.tar"
fi
buildah tag localhost/debian:12 localhost/debian:12-slim

# 2. The image, exactly as the Dockerfile says (target cpu). Docker format:
#    the OCI format has no HEALTHCHECK, which buildah would drop.
#    PROVP_CHECK_IMAGE_REUSE=1 runs the image already tagged $TAG instead
#    (to rerun steps 3-5 without another long build).
if [ "${PROVP_CHECK_IMAGE_REUSE:-0}" = 1 ] && buildah inspect --type image "$TAG" >/dev/null 2>&1; then
  step "reusing the image $TAG built $(buildah inspect --type image --format '{{.Docker.Created}}' "$TAG")"
else
  step "buildah bud --target cpu -t $TAG (long)"
  start=$(date +%s)
  buildah bud --isolation chroot --pull=never --layers --format docker --target cpu -t "$TAG" . \
    >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "image build (log: $WORK/build.log)"; }
  step "built in $(( $(date +%s) - start )) s; size $(buildah images --format '{{.Size}}' "$TAG" | head -1)"
fi

# 3. What a user mounts: OpenAI's layout (weights + BPE file, tiny fixture
#    standing in for ViT-B-16), an API key file, a data folder, an image.
mkdir -p "$WORK/models" "$WORK/data" "$WORK/images" "$WORK/secrets"
cp "$SHARED/fixtures/tiny/openai_jit.pt" "$WORK/models/ViT-B-16.pt"
cp "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" "$WORK/models/"
cp "$SHARED/fixtures/preprocess/rgb_300x200.png" "$WORK/images/"
KEY="check-image-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "admin $KEY check-image" >"$WORK/secrets/api_keys"
# The server's file lists keys with scopes; the client's holds the key alone.
echo "$KEY" >"$WORK/secrets/client_key"
chmod 0644 "$WORK/secrets/api_keys" "$WORK/secrets/client_key"
chown -R 10001:10001 "$WORK/data"
chmod -R a+rX "$WORK/models" "$WORK/images"

entrypoint=$(buildah inspect --type image --format '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}' "$TAG")
cmd=$(buildah inspect --type image --format '{{range .Docker.Config.Cmd}}{{.}} {{end}}' "$TAG")
user=$(buildah inspect --type image --format '{{.Docker.Config.User}}' "$TAG")
step "image runs as '$user': $entrypoint$cmd"
ctr=$(buildah from "$TAG")
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mounts=(-v "$WORK/models:/models:ro" -v "$WORK/secrets/api_keys:/run/secrets/api_keys:ro"
        -v "$WORK/secrets/client_key:/run/secrets/client_key:ro"
        -v "$WORK/data:/data" -v "$WORK/images:/images:ro")

# 4. The image's own ENTRYPOINT + CMD (word-split as the exec form lists them).
# shellcheck disable=SC2086
buildah run --isolation chroot "${mounts[@]}" "$ctr" -- $entrypoint$cmd >"$WORK/server.log" 2>&1 &
server_pid=$!
hc=$(buildah inspect --type image --format '{{range .Docker.Config.Healthcheck.Test}}{{.}} {{end}}' "$TAG")
hc=${hc#CMD }
step "HEALTHCHECK: $hc"
healthy=0
for _ in $(seq 1 120); do
  kill -0 "$server_pid" 2>/dev/null || { cat "$WORK/server.log"; fail "the server exited"; }
  # shellcheck disable=SC2086
  if buildah run --isolation chroot "$ctr" -- $hc >"$WORK/health.log" 2>&1; then healthy=1; break; fi
  sleep 2
done
[ "$healthy" -eq 1 ] || { cat "$WORK/server.log" "$WORK/health.log"; fail "HEALTHCHECK never passed"; }
step "HEALTHCHECK passed: $(cat "$WORK/health.log")"

step "classify through the image's provp client"
buildah run --isolation chroot "${mounts[@]}" "$ctr" -- \
  provp --address 127.0.0.1:50051 --api-key-file /run/secrets/client_key \
  classify --classes "red square,blue circle,green triangle" /images/rgb_300x200.png \
  >"$WORK/classify.log" 2>&1 || { cat "$WORK/classify.log"; fail "classification"; }
cat "$WORK/classify.log"
curl -fsS http://127.0.0.1:9090/readyz >/dev/null 2>&1 && step "/readyz 200" || step "/readyz not 200"
# The HTTP/JSON door on the image's port 8080, with the same key.
printf '{"images":[{"encoded":"%s"}],"inline_classes":{"names":["red square","blue circle"]},"top_k":1}' \
  "$(base64 -w0 "$WORK/images/rgb_300x200.png")" >"$WORK/classify.json"
http=$(curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  --data-binary "@$WORK/classify.json" http://127.0.0.1:8080/v1/classify 2>&1) ||
  fail "HTTP/JSON classify: $http"
echo "$http" | grep -q '"label": *"blue circle"\|"label": *"red square"' || fail "HTTP/JSON classify answered: $http"
step "HTTP/JSON classify: $(echo "$http" | tr -d '\n' | grep -o '"label": *"[^"]*"' | head -1), $(echo "$http" | tr -d '\n' | grep -o '"score": *[0-9.e-]*' | head -1)"
images=$(curl -fsS http://127.0.0.1:9090/metrics 2>/dev/null | grep '^provp_classify_images_total' || true)
step "metrics: ${images:-none}"

kill -TERM "$server_pid"
wait "$server_pid" && rc=0 || rc=$?
server_pid=""
step "server stopped with exit $rc; last lines:"
tail -5 "$WORK/server.log"
step "OK ($WORK holds the logs)"
