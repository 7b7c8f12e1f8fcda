// cuda_kernels.h without CUDA (Debian's CPU LibTorch): nothing applies, so
// every caller takes the generic LibTorch path.
#include "core/clip/cuda_kernels.h"

namespace provp::clip {

bool CudaKernelsCompiled() { return false; }

bool FusedBiasQuickGelu(at::Tensor&, const at::Tensor&) { return false; }

bool FusedAddLayerNorm(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                       at::Tensor*) {
  return false;
}

}  // namespace provp::clip
