#!/usr/bin/env bash
# Compiles and links every CUDA code path on a machine without a GPU, so
# they do not rot between runs on the GPU host: a torch-only build
# (-DPROVP_TORCH_ONLY=ON: the LibTorch libraries, their benchmarks and tests,
# the .cu kernels) against the CUDA LibTorch inside PyPI's torch==2.11.0
# wheel (the GPU host's version), with nvcc from /usr/local/cuda. Nothing
# runs on a GPU here. scripts/test.sh calls it when nvcc is installed.
#
# The wheel goes into a virtual environment outside the repository
# (PROVP_CUDA_VENV, default ~/.cache/provp/torch-2.11.0; installed once, a
# few GB); the build goes to PROVP_CUDA_BUILD_DIR (default build-cuda/).
# TORCH_CUDA_ARCH_LIST (default 9.0, the H100/H200) sets the nvcc targets.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_version=2.11.0
venv="${PROVP_CUDA_VENV:-$HOME/.cache/provp/torch-$torch_version}"
build_dir="${PROVP_CUDA_BUILD_DIR:-build-cuda}"
nvcc="${CUDACXX:-/usr/local/cuda/bin/nvcc}"
[[ -x $nvcc ]] || { echo "cuda-build.sh: no nvcc at $nvcc (set CUDACXX)" >&2; exit 1; }

have_torch() {
  "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version' or torch.version.cuda is None)" 2>/dev/null
}
if ! have_torch; then
  echo "cuda-build.sh: installing torch==$torch_version (CUDA LibTorch) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==$torch_version"
  have_torch || { echo "cuda-build.sh: torch $torch_version with CUDA did not install" >&2; exit 1; }
fi
torch_cmake="$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
# The wheel's torch/ folder first: TorchConfig's find_library would
# otherwise pick Debian's CPU-only libtorch.so from the system paths.
torch_root="$(dirname "$(dirname "$torch_cmake")")"

mkdir -p "$build_dir"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
nvcc_dir="$(dirname "$nvcc")"
export CUDACXX="$nvcc" PATH="$nvcc_dir:$PATH"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPROVP_TORCH_ONLY=ON \
  -DPROVP_BUILD_TESTS=ON -DCMAKE_PREFIX_PATH="$torch_root;$torch_cmake" \
  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
  >"$build_dir/configure.log" 2>&1 ||
  { tail -30 "$build_dir/configure.log" >&2; echo "cuda-build.sh: configure failed" >&2; exit 1; }
grep -q 'PROVP_CUDA_KERNELS:BOOL=ON' "$build_dir/CMakeCache.txt" ||
  { echo "cuda-build.sh: LibTorch $torch_version was found without CUDA" >&2; exit 1; }
cmake --build "$build_dir" -j"${PROVP_JOBS:-2}"
echo "cuda-build.sh: CUDA code paths compiled and linked against torch $torch_version ($build_dir)"
