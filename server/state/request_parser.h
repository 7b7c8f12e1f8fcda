// Parsing of request messages from a client's bytes (issue 14). gRPC's own
// deserializer answers a message that does not parse with INTERNAL and no
// detail, before any provp code runs; the server takes the raw bytes
// instead (server/rpc_service.h) and parses them here. The bytes are first
// checked against the message type's wire format, so a failure names the
// field (`inline_classes.names[1]`: not valid UTF-8), then parsed by
// protobuf. Stricter than protobuf in one way: a known field sent with the
// wrong wire type is refused (protobuf would keep it as an unknown field and
// the request would silently lack it); unknown field numbers are skipped.
// No grpcpp here, so the fuzzers (fuzz/) run the same code. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/zero_copy_stream.h>
#include <google/protobuf/message.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace provp::server {

// The reason of every request that does not parse.
inline constexpr char kReasonMalformedMessage[] = "MALFORMED_MESSAGE";

// Nesting deeper than this is refused (protobuf's default recursion limit).
inline constexpr int kMaxMessageDepth = 100;

// Checks that the `size` bytes read from `in` are a well-formed encoding of
// `type`: every tag, length and varint complete and inside its message,
// known fields with their declared wire type (repeated scalars packed or
// not), valid UTF-8 in every string field (map keys and values included),
// groups closed, at most kMaxMessageDepth levels. OK, or INVALID_ARGUMENT
// MALFORMED_MESSAGE with BadRequest naming the field where it is known.
absl::Status CheckWireFormat(google::protobuf::io::ZeroCopyInputStream* in, int64_t size,
                             const google::protobuf::Descriptor* type);

// Opens the request's bytes for one pass from the start; called twice.
using OpenRequestBytes =
    absl::FunctionRef<std::unique_ptr<google::protobuf::io::ZeroCopyInputStream>()>;

// CheckWireFormat, then protobuf's parse into `out` (cleared first).
absl::Status ParseRequest(int64_t size, OpenRequestBytes open, google::protobuf::Message* out);
absl::Status ParseRequest(absl::string_view bytes, google::protobuf::Message* out);

// True when `s` is well-formed UTF-8 (RFC 3629: shortest form, no
// surrogates, at most U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace provp::server
