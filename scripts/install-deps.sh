#!/usr/bin/env bash
# Installs every Debian 12 package provp needs to build, test and run.
# Idempotent: packages already present are skipped by apt; safe to rerun.
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config git
  clang libclang-rt-14-dev
  libtorch-dev libopenblas0-openmp
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libjemalloc-dev
  libgtest-dev libgmock-dev
  libcivetweb-dev prometheus-cpp-dev libyaml-dev libcurl4-openssl-dev libsqlite3-dev libpqxx-dev postgresql
  libutf8proc-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libssl-dev
  prometheus yamllint python3-yaml
  python3-grpcio python3-protobuf python3-numpy
  dataset-fashion-mnist
)

# PROVP_SKIP_PACKAGES="a b": leave these out (the GPU image brings its own
# LibTorch and builds on Ubuntu, which lacks some Debian-only packages).
skip=" ${PROVP_SKIP_PACKAGES:-} "
missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$skip" == *" $p "* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
