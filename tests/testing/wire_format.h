// Protobuf wire-format pieces, for tests and seed generators that must write
// bytes no generated encoder would (invalid UTF-8, wrong wire types,
// truncation). Header-only; used by the request-parser unit tests, the
// malformed-request integration test and fuzz/make_request_seeds.
#pragma once

#include <cstdint>
#include <string>

namespace provp::testing::wire {

// Base-128 varint.
inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// A field's key: its number and wire type (0 VARINT, 1 I64, 2 LEN, 5 I32).
inline std::string Tag(int number, int wire_type) {
  return Varint((static_cast<uint64_t>(number) << 3) | static_cast<uint64_t>(wire_type));
}

// A length-delimited field (bytes, string or sub-message).
inline std::string Len(int number, const std::string& payload) {
  return Tag(number, 2) + Varint(payload.size()) + payload;
}

}  // namespace provp::testing::wire
