#!/usr/bin/env bash
# Prints, one per line, the Debian/Ubuntu packages that own the shared
# libraries the given binaries load (ldd, then dpkg -S). The Dockerfile's
# build stages write this list and the slim runtime stages install exactly it,
# so the runtime package names never have to be guessed per distribution.
# Libraries dpkg does not own (the LibTorch zip under /opt/libtorch) are left
# out, and so are CUDA's, which the CUDA runtime base image already carries.
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

deps="$(ldd "$@")"
# libcuda.so.1 belongs to the driver, which the NVIDIA container runtime
# mounts at run time; anything else unresolved is a broken build.
missing="$(grep "not found" <<<"$deps" | grep -v "libcuda\.so" || true)"
if [ -n "$missing" ]; then
  echo "runtime-packages: unresolved libraries:" >&2
  echo "$missing" >&2
  exit 1
fi

owner() {
  local path="$1" candidate
  # Merged /usr: dpkg may have registered /lib/... or /usr/lib/...
  for candidate in "$path" "$(readlink -f "$path")" "/usr${path}" "${path#/usr}"; do
    [ -n "$candidate" ] || continue
    if out="$(dpkg -S "$candidate" 2>/dev/null)"; then
      echo "${out%%:*}" | cut -d, -f1
      return 0
    fi
  done
  return 1
}

awk '/=> \//{print $3}' <<<"$deps" | sort -u | while read -r lib; do
  owner "$lib" || true
done | { grep -Ev '^(cuda-|libcudart|libcublas|libcudnn|libcufft|libcurand|libcusolver|libcusparse|libnccl|libnpp|libnv)' || true; } | sort -u
