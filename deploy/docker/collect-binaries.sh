#!/usr/bin/env bash
# Used by the Dockerfile's build stages: copies the provp-server and provp
# executables out of a build tree into OUT/bin and writes the runtime
# packages they need to OUT/runtime-packages.txt (runtime-packages.sh).
# Usage: collect-binaries.sh BUILD_DIR OUT_DIR
set -euo pipefail
build_dir="$1"
out_dir="$2"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out_dir/bin"
for name in provp-server provp; do
  bin="$(find "$build_dir" -type f -name "$name" -perm -u+x -not -path '*/CMakeFiles/*' | head -n1)"
  if [ -z "$bin" ]; then
    echo "collect-binaries: no executable named $name under $build_dir" >&2
    exit 1
  fi
  install -m 0755 "$bin" "$out_dir/bin/$name"
done
"$here/runtime-packages.sh" "$out_dir/bin/provp-server" "$out_dir/bin/provp" >"$out_dir/runtime-packages.txt"
echo "collect-binaries: $(wc -l <"$out_dir/runtime-packages.txt") runtime packages"
