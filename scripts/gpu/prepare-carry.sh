#!/usr/bin/env bash
# Prepares .gpu-carry/ (git-ignored) for a GPU host that has only CUDA and a
# Python with PyTorch (docs/gpu.md):
#   deps.tar.xz  Debian 12's libraries for the whole server, unpacked from
#                their packages and packed again (~11 MiB; 48 MiB unpacked):
#                Abseil, gRPC, Protobuf with protoc and the gRPC plugin,
#                c-ares, re2, OpenSSL, SQLite, libpq/libpqxx, civetweb,
#                prometheus-cpp, CLI11, nlohmann-json, utf8proc, zlib,
#                GoogleTest, jemalloc, and libjpeg-turbo, libpng and libwebp
#                for the native image codec (OpenCV's Debian packages pull in
#                ~220 MB and stay behind). Debian's libraries run on the
#                host's newer glibc.
#   shared/      the fixtures and the CLIP vocabulary the GPU run reads
#                (../shared does not travel).
# Everything carried counts towards the device tool's 64 MiB; the script
# prints the total. run-gpu-checks.sh unpacks deps.tar.xz on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu-carry
SHARED="${PROVP_SHARED_DIR:-../shared}"
PACKAGES=(
  libabsl-dev libabsl20220623 nlohmann-json3-dev libutf8proc-dev libutf8proc2 zlib1g-dev
  libgtest-dev libgmock-dev libcli11-dev
  libgrpc++-dev libgrpc-dev libgrpc++1.51 libgrpc29
  libprotobuf-dev libprotobuf32 libprotoc32 protobuf-compiler protobuf-compiler-grpc
  libc-ares-dev libc-ares2 libre2-dev libre2-9 libssl-dev libssl3
  libsqlite3-dev libsqlite3-0 libpqxx-dev libpqxx-6.4 libpq-dev libpq5
  libldap-2.5-0 libsasl2-2 libsasl2-modules-db
  libcivetweb-dev libcivetweb1 prometheus-cpp-dev libprometheus-cpp-core1.0
  libprometheus-cpp-pull1.0 libprometheus-cpp-push1.0 libcurl4-openssl-dev libcurl4
  libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16
  libwebp-dev libwebp7 libwebpmux3 libwebpdemux2 libjemalloc-dev libjemalloc2
)
rm -rf "$CARRY"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$CARRY/shared/fixtures/tiny" "$CARRY/shared/clip" "$work/debs" "$work/deps"
(cd "$work/debs" && apt-get download -q "${PACKAGES[@]}" 2>&1 | grep -v '^W:' || true)
missing=0
for p in "${PACKAGES[@]}"; do
  ls "$work/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "prepare-carry: $p not downloaded" >&2; missing=1; }
done
[ "$missing" -eq 0 ] || exit 1
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/deps"; done
# What a shared-library build does not read: static archives, docs, the
# unsecure gRPC variants, GoogleTest's sources.
rm -rf "$work/deps/usr/share/doc" "$work/deps/usr/share/man" "$work/deps/usr/src"
find "$work/deps" \( -name '*.a' -o -name '*unsecure*' \) -delete
tar -cJf "$CARRY/deps.tar.xz" -C "$work/deps" .
# The whole tiny fixture (all four weight layouts, ~37 MiB): the loader and
# parity tests read every layout.
cp -r "$SHARED"/fixtures/tiny/. "$CARRY/shared/fixtures/tiny/"
cp "$SHARED"/clip/* "$CARRY/shared/clip/"
du -sh "$CARRY/deps.tar.xz" "$CARRY"
echo "prepare-carry: with the working tree: $(( ($(du -sb "$CARRY" | cut -f1) + $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)) / 1048576 )) MiB of 64"
