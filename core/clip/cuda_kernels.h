// Fused CUDA kernels for the inference forward (compiled by nvcc from
// cuda_kernels.cu when LibTorch has CUDA, PROVP_CUDA_KERNELS). Each one
// replaces several elementwise passes over a [tokens, width] activation
// with one: bias + QuickGELU after the MLP's first GEMM, and residual add +
// LayerNorm between the attention and the MLP. Math in fp32 on bf16/fp16/
// fp32 tensors, LayerNorm parameters read as fp32 (no cast copies).
// Every function returns false without touching anything when it does not
// apply (CPU tensors, a build without the kernels, an unsupported dtype or
// width); callers then take the generic LibTorch path. Stateless; safe from
// any thread; launches on the current CUDA stream (so CUDA graphs capture
// them).
#pragma once

#include <ATen/ATen.h>

namespace provp::clip {

// True when this build carries the kernels.
bool CudaKernelsCompiled();

// h <- q(h + bias) with q(z) = z * sigmoid(1.702 z), in place.
// h [N, F] contiguous CUDA, bias [F] of h's dtype.
bool FusedBiasQuickGelu(at::Tensor& h, const at::Tensor& bias);

// x <- x + delta, then returns LayerNorm(x) (statistics in fp32, gamma and
// beta fp32 [W]) in x's dtype through `normed`. x, delta [N, W] contiguous
// CUDA of one dtype.
bool FusedAddLayerNorm(at::Tensor& x, const at::Tensor& delta, const at::Tensor& gamma,
                       const at::Tensor& beta, double eps, at::Tensor* normed);

}  // namespace provp::clip
