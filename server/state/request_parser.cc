// Implementation of request_parser.h: a walk of the wire format with the
// message's descriptor (CodedInputStream does the varints, limits and
// skips), then protobuf's parse, which after the walk should not fail.
#include "server/state/request_parser.h"

#include <climits>
#include <string>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;

// Wire types (protobuf encoding spec names).
enum Wire : int {
  kVarint = 0,
  kI64 = 1,
  kLen = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kI32 = 5,
};

const char* WireName(int wire) {
  static const char* const kNames[] = {"VARINT", "I64", "LEN", "SGROUP", "EGROUP", "I32"};
  return wire >= 0 && wire <= kI32 ? kNames[wire] : "invalid";
}

// The wire type a field's single values are written with.
int WireOf(const FieldDescriptor* f) {
  switch (f->type()) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return kI64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return kI32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return kLen;
    case FieldDescriptor::TYPE_GROUP:
      return kStartGroup;
    default:
      return kVarint;
  }
}

absl::Status Malformed(const std::string& field, absl::string_view what) {
  return InvalidArgument(kReasonMalformedMessage,
                         field.empty() ? std::string(what) : absl::StrCat(field, ": ", what),
                         field);
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

class Checker {
 public:
  explicit Checker(CodedInputStream* in) : in_(in) {}

  // The fields of one message of `type` (nullptr: an unknown group, every
  // field unknown), up to the current limit or, for a group, its END_GROUP
  // tag (`group` = the group's field number, else 0). `depth`: nesting of
  // this message below the request (0).
  absl::Status Message(const Descriptor* type, const std::string& path, int depth, int group) {
    std::vector<int> seen(type != nullptr ? type->field_count() : 0, 0);
    while (true) {
      if (in_->BytesUntilLimit() == 0) {
        if (group == 0) return absl::OkStatus();
        return Malformed(path, "group is not closed (the message is truncated)");
      }
      // Tags are at most 5 bytes, like protobuf's parser takes them (the
      // stream's ReadTag would take 10); bits past 32 drop as there.
      uint64_t raw_tag = 0;
      if (!ReadVarint(5, &raw_tag) || static_cast<uint32_t>(raw_tag) == 0) {
        return Malformed(path, "malformed or truncated field tag");
      }
      const uint32_t tag = static_cast<uint32_t>(raw_tag);
      const int number = static_cast<int>(tag >> 3);
      const int wire = static_cast<int>(tag & 7);
      if (number == 0) return Malformed(path, "field number 0 is not allowed");
      const FieldDescriptor* f = type != nullptr ? type->FindFieldByNumber(number) : nullptr;
      if (wire == kEndGroup) {
        if (number == group) return absl::OkStatus();
        return Malformed(path, absl::StrCat("end of group ", number, " without its start"));
      }
      if (wire > kI32) {
        return Malformed(f != nullptr ? Join(path, f->name()) : path,
                         absl::StrCat("invalid wire type ", wire, " (field number ", number, ")"));
      }
      if (f == nullptr) {
        RETURN_IF_ERROR(Unknown(number, wire, path, depth));
        continue;
      }
      std::string field = Join(path, f->name());
      const bool packed = f->is_packable() && wire == kLen;
      if (f->is_repeated() && !packed) absl::StrAppend(&field, "[", seen[f->index()]++, "]");
      RETURN_IF_ERROR(Known(f, wire, packed, field, depth));
    }
  }

 private:
  absl::Status Known(const FieldDescriptor* f, int wire, bool packed, const std::string& field,
                     int depth) {
    const int expected = WireOf(f);
    if (wire != expected && !packed) {
      return Malformed(field, absl::StrCat("sent with wire type ", WireName(wire), "; a ",
                                           f->type_name(), " field takes ", WireName(expected)));
    }
    if (wire == kStartGroup) return Nested(f->message_type(), field, depth, f->number());
    if (wire != kLen) return Scalar(wire, field);
    int len = 0;
    RETURN_IF_ERROR(Length(field, &len));
    if (packed) {
      const CodedInputStream::Limit limit = in_->PushLimit(len);
      while (in_->BytesUntilLimit() > 0) RETURN_IF_ERROR(Scalar(expected, field));
      in_->PopLimit(limit);
      return absl::OkStatus();
    }
    switch (f->type()) {
      case FieldDescriptor::TYPE_STRING:
        if (!in_->ReadString(&text_, len)) return Malformed(field, "truncated");
        if (!IsValidUtf8(text_)) return Malformed(field, "not valid UTF-8");
        return absl::OkStatus();
      case FieldDescriptor::TYPE_MESSAGE: {
        const CodedInputStream::Limit limit = in_->PushLimit(len);
        RETURN_IF_ERROR(Nested(f->message_type(), field, depth, 0));
        in_->PopLimit(limit);
        return absl::OkStatus();
      }
      default:  // bytes
        if (!in_->Skip(len)) return Malformed(field, "truncated");
        return absl::OkStatus();
    }
  }

  absl::Status Unknown(int number, int wire, const std::string& path, int depth) {
    const std::string what = absl::StrCat("unknown field ", number);
    if (wire == kStartGroup) return Nested(nullptr, path, depth, number);
    if (wire != kLen) {
      absl::Status s = Scalar(wire, path);
      return s.ok() ? s : Malformed(path, absl::StrCat(what, ": truncated value"));
    }
    int len = 0;
    absl::Status s = Length(path, &len);
    if (!s.ok() || !in_->Skip(len)) {
      return Malformed(path, absl::StrCat(what, ": its length runs past the end of the message"));
    }
    return absl::OkStatus();
  }

  absl::Status Nested(const Descriptor* type, const std::string& field, int depth, int group) {
    if (depth + 1 > kMaxMessageDepth) {
      return Malformed(field, absl::StrCat("nested deeper than ", kMaxMessageDepth, " messages"));
    }
    return Message(type, field, depth + 1, group);
  }

  absl::Status Scalar(int wire, const std::string& field) {
    bool ok = false;
    if (wire == kVarint) {
      uint64_t v;
      ok = in_->ReadVarint64(&v);
    } else if (wire == kI64) {
      uint64_t v;
      ok = in_->ReadLittleEndian64(&v);
    } else {
      uint32_t v;
      ok = in_->ReadLittleEndian32(&v);
    }
    return ok ? absl::OkStatus() : Malformed(field, "truncated or malformed value");
  }

  // A varint of at most `max_bytes` bytes.
  bool ReadVarint(int max_bytes, uint64_t* v) {
    const int start = in_->CurrentPosition();
    return in_->ReadVarint64(v) && in_->CurrentPosition() - start <= max_bytes;
  }

  absl::Status Length(const std::string& field, int* len) {
    // At most 5 bytes and below 2 GiB, as protobuf's parser reads sizes.
    uint64_t v = 0;
    if (!ReadVarint(5, &v) || v > static_cast<uint64_t>(INT_MAX)) {
      return Malformed(field, "malformed length");
    }
    *len = static_cast<int>(v);
    if (*len > in_->BytesUntilLimit()) {
      return Malformed(field, absl::StrCat("length ", *len, " runs past the end of the message (",
                                           in_->BytesUntilLimit(), " bytes left); truncated"));
    }
    return absl::OkStatus();
  }

  CodedInputStream* const in_;
  std::string text_;
};

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // at most U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
    }
    p += n + 1;
  }
  return true;
}

absl::Status CheckWireFormat(google::protobuf::io::ZeroCopyInputStream* in, int64_t size,
                             const Descriptor* type) {
  if (size < 0 || size > INT_MAX) {
    return Malformed("", "the message is larger than protobuf can parse");
  }
  CodedInputStream coded(in);
  coded.PushLimit(static_cast<int>(size));
  Checker checker(&coded);
  return checker.Message(type, "", 0, 0);
}

absl::Status ParseRequest(int64_t size, OpenRequestBytes open, google::protobuf::Message* out) {
  out->Clear();
  {
    std::unique_ptr<google::protobuf::io::ZeroCopyInputStream> in = open();
    RETURN_IF_ERROR(CheckWireFormat(in.get(), size, out->GetDescriptor()));
  }
  std::unique_ptr<google::protobuf::io::ZeroCopyInputStream> in = open();
  if (!out->ParseFromZeroCopyStream(in.get())) {
    // The check accepts nothing protobuf refuses; this is a safety net.
    return Malformed(
        "", absl::StrCat("the message does not parse as ", out->GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

absl::Status ParseRequest(absl::string_view bytes, google::protobuf::Message* out) {
  return ParseRequest(
      static_cast<int64_t>(bytes.size()),
      [&]() -> std::unique_ptr<google::protobuf::io::ZeroCopyInputStream> {
        return std::make_unique<google::protobuf::io::ArrayInputStream>(
            bytes.data(), static_cast<int>(bytes.size()));
      },
      out);
}

}  // namespace provp::server
