// A minimal 8-bit RGB pixel buffer for the built-in data generators, and a
// PNG encoder for it built on zlib alone. The generators live in a
// LibTorch-only library that must not link OpenCV (the GPU-host build has
// none), so they cannot use core/image's EncodePng. Plain value type and
// free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace provp::builtin {

// Interleaved RGB, row-major [height, width, 3].
struct Raster {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> rgb;

  Raster() = default;
  Raster(int h, int w) : height(h), width(w), rgb(static_cast<size_t>(h) * w * 3, 0) {}
  uint8_t* at(int y, int x) { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
  const uint8_t* at(int y, int x) const { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

// An RGB colour with float channels in [0, 255].
struct Color {
  float r = 0;
  float g = 0;
  float b = 0;
};

// Encodes as an 8-bit RGB PNG (one IDAT, zlib default compression).
// INVALID_ARGUMENT for empty or inconsistent rasters.
absl::StatusOr<std::string> EncodePng(const Raster& raster);

}  // namespace provp::builtin
