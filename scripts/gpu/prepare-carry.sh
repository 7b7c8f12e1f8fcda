#!/usr/bin/env bash
# Prepares .gpu-carry/ (git-ignored) for a GPU host that has only CUDA and a
# Python with PyTorch: Debian 12's Abseil, nlohmann-json, utf8proc, zlib and
# GoogleTest unpacked (Debian's libraries run on newer glibc), plus the
# fixtures the GPU run reads (../shared does not travel). ~45 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu-carry
SHARED="${PROVP_SHARED_DIR:-../shared}"
rm -rf "$CARRY"
mkdir -p "$CARRY/debs" "$CARRY/deps" "$CARRY/shared/fixtures/tiny" "$CARRY/shared/clip"
(cd "$CARRY/debs" && apt-get download -q libabsl-dev libabsl20220623 nlohmann-json3-dev \
   libutf8proc-dev libutf8proc2 zlib1g-dev libgtest-dev libgmock-dev 2>&1 | grep -v '^W:' || true)
for deb in "$CARRY"/debs/*.deb; do dpkg -x "$deb" "$CARRY/deps"; done
rm -rf "$CARRY/debs" "$CARRY/deps/usr/share/doc" "$CARRY/deps/usr/src"
# The whole tiny fixture (all four weight layouts, ~22 MiB): the loader tests
# read every layout.
cp -r "$SHARED"/fixtures/tiny/. "$CARRY/shared/fixtures/tiny/"
cp "$SHARED"/clip/* "$CARRY/shared/clip/"
du -sh "$CARRY"
