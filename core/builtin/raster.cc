// PNG encoding of a Raster with zlib: signature, IHDR, one IDAT holding the
// deflated scanlines (filter type 0), IEND. Small images only (demo data),
// so one buffer is enough.
#include "core/builtin/raster.h"

#include <zlib.h>

#include "absl/strings/str_cat.h"

namespace provp::builtin {
namespace {

void AppendU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void AppendChunk(std::string& out, const char type[4], const std::string& data) {
  AppendU32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  const uLong crc =
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  AppendU32(out, static_cast<uint32_t>(crc));
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const Raster& raster) {
  if (raster.height <= 0 || raster.width <= 0 || raster.height > 16384 || raster.width > 16384 ||
      raster.rgb.size() != static_cast<size_t>(raster.height) * raster.width * 3) {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: raster ", raster.width, "x",
                                                   raster.height, " with ", raster.rgb.size(),
                                                   " bytes is not a valid RGB image"));
  }
  const size_t row = static_cast<size_t>(raster.width) * 3;
  std::string raw;
  raw.reserve((row + 1) * raster.height);
  for (int y = 0; y < raster.height; ++y) {
    raw.push_back('\0');  // filter type: none
    raw.append(reinterpret_cast<const char*>(raster.at(y, 0)), row);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK) {
    return absl::InternalError("EncodePng: zlib compress2 failed");
  }
  packed.resize(packed_size);

  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  AppendU32(ihdr, static_cast<uint32_t>(raster.width));
  AppendU32(ihdr, static_cast<uint32_t>(raster.height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(2);  // colour type: RGB
  ihdr.push_back(0);  // compression
  ihdr.push_back(0);  // filter
  ihdr.push_back(0);  // interlace
  AppendChunk(out, "IHDR", ihdr);
  AppendChunk(out, "IDAT", packed);
  AppendChunk(out, "IEND", "");
  return out;
}

}  // namespace provp::builtin
