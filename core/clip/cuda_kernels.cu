// nvcc implementation of cuda_kernels.h. One thread block per row for the
// LayerNorm (width <= 4096: ViT widths are 768-1280), a grid-stride loop
// for the elementwise QuickGELU. Compiled only with a CUDA LibTorch.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/clip/cuda_kernels.h"

namespace provp::clip {
namespace {

template <typename T>
__device__ __forceinline__ float ToFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToFloat(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T FromFloat(float v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat(float v) {
  return __float2bfloat16(v);
}
template <>
__device__ __forceinline__ __half FromFloat(float v) {
  return __float2half(v);
}

template <typename T>
__global__ void BiasQuickGeluKernel(T* h, const T* bias, int64_t n, int64_t features) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float z = ToFloat(h[i]) + ToFloat(bias[i % features]);
    h[i] = FromFloat<T>(z / (1.0f + __expf(-1.702f * z)));
  }
}

constexpr int kLnThreads = 256;
constexpr int kLnMaxPerThread = 16;  // width <= 4096

// Block-wide sum of one float; every thread gets the result.
__device__ float BlockSum(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffff, v, offset);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kLnThreads / 32; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

template <typename T>
__global__ void AddLayerNormKernel(T* x, const T* delta, const float* gamma, const float* beta,
                                   T* out, int64_t width, float eps) {
  __shared__ float scratch[kLnThreads / 32];
  const int64_t row = blockIdx.x;
  T* xr = x + row * width;
  const T* dr = delta + row * width;
  float vals[kLnMaxPerThread];
  float sum = 0.0f;
  int k = 0;
  for (int64_t c = threadIdx.x; c < width; c += kLnThreads, ++k) {
    const float v = ToFloat(xr[c]) + ToFloat(dr[c]);
    const T stored = FromFloat<T>(v);
    xr[c] = stored;
    // Normalise what the residual stream holds, as the unfused path does.
    vals[k] = ToFloat(stored);
    sum += vals[k];
  }
  const float mean = BlockSum(sum, scratch) / static_cast<float>(width);
  float sq = 0.0f;
  k = 0;
  for (int64_t c = threadIdx.x; c < width; c += kLnThreads, ++k) {
    const float d = vals[k] - mean;
    sq += d * d;
  }
  const float rstd = rsqrtf(BlockSum(sq, scratch) / static_cast<float>(width) + eps);
  T* orow = out + row * width;
  k = 0;
  for (int64_t c = threadIdx.x; c < width; c += kLnThreads, ++k) {
    orow[c] = FromFloat<T>((vals[k] - mean) * rstd * gamma[c] + beta[c]);
  }
}

bool Applies(const at::Tensor& t) {
  return t.defined() && t.is_cuda() && t.is_contiguous() &&
         (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf ||
          t.scalar_type() == at::kFloat);
}

template <typename Fn>
void DispatchDtype(at::ScalarType type, Fn&& fn) {
  if (type == at::kBFloat16) {
    fn(__nv_bfloat16{});
  } else if (type == at::kHalf) {
    fn(__half{});
  } else {
    fn(float{});
  }
}

}  // namespace

bool CudaKernelsCompiled() { return true; }

bool FusedBiasQuickGelu(at::Tensor& h, const at::Tensor& bias) {
  if (!Applies(h) || !Applies(bias) || bias.scalar_type() != h.scalar_type() || h.dim() < 1 ||
      bias.dim() != 1 || bias.size(0) != h.size(-1) || h.numel() == 0) {
    return false;
  }
  const c10::cuda::CUDAGuard guard(h.device());
  const int64_t n = h.numel();
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 65535));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  DispatchDtype(h.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    BiasQuickGeluKernel<T><<<blocks, threads, 0, stream>>>(
        reinterpret_cast<T*>(h.data_ptr()), reinterpret_cast<const T*>(bias.data_ptr()), n,
        h.size(-1));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

bool FusedAddLayerNorm(at::Tensor& x, const at::Tensor& delta, const at::Tensor& gamma,
                       const at::Tensor& beta, double eps, at::Tensor* normed) {
  if (!Applies(x) || !Applies(delta) || delta.scalar_type() != x.scalar_type() ||
      delta.sizes() != x.sizes() || !gamma.is_cuda() || !beta.is_cuda() ||
      gamma.scalar_type() != at::kFloat || beta.scalar_type() != at::kFloat ||
      !gamma.is_contiguous() || !beta.is_contiguous() || x.dim() < 2) {
    return false;
  }
  const int64_t width = x.size(-1);
  if (width > kLnThreads * kLnMaxPerThread || gamma.numel() != width || beta.numel() != width) {
    return false;
  }
  const int64_t rows = x.numel() / width;
  if (rows == 0 || rows > 2147483647) return false;
  const c10::cuda::CUDAGuard guard(x.device());
  *normed = at::empty_like(x);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  DispatchDtype(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    AddLayerNormKernel<T><<<static_cast<unsigned>(rows), kLnThreads, 0, stream>>>(
        reinterpret_cast<T*>(x.data_ptr()), reinterpret_cast<const T*>(delta.data_ptr()),
        gamma.data_ptr<float>(), beta.data_ptr<float>(), reinterpret_cast<T*>(normed->data_ptr()),
        width, static_cast<float>(eps));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

}  // namespace provp::clip
