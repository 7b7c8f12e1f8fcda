// A machine-readable reason (UPPER_SNAKE_CASE, e.g. "IMAGE_TOO_LARGE")
// carried on an absl::Status as a payload. The code that makes an error
// sets it there, where the cause is known, so no layer above has to guess it
// from the message text; the server's one mapping to gRPC puts it into
// google.rpc.ErrorInfo.reason. Header-only; pure functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace provp::util {

// Reasons set by the core libraries and read by the server (one home for
// each name that crosses that boundary).
// An image over the decoder's pixel budget (core/image/image_io).
inline constexpr char kReasonImageTooLarge[] = "IMAGE_TOO_LARGE";
// A prompt set trained on another backbone (core/train/prompt_set, engines).
inline constexpr char kReasonBackboneMismatch[] = "BACKBONE_MISMATCH";
// Prompts whose width or depth do not fit the backbone.
inline constexpr char kReasonPromptShapeMismatch[] = "PROMPT_SHAPE_MISMATCH";

// The payload's type URL; the value is the reason's bytes.
inline constexpr char kErrorReasonUrl[] = "type.googleapis.com/provp.ErrorReason";

// `status` with its reason set to `reason` (replacing one it had). OK
// statuses carry no payloads and come back unchanged.
inline absl::Status WithErrorReason(absl::Status status, absl::string_view reason) {
  if (!status.ok() && !reason.empty()) status.SetPayload(kErrorReasonUrl, absl::Cord(reason));
  return status;
}

// The reason set on `status`; "" when none was.
inline std::string ErrorReasonOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorReasonUrl);
  return payload ? std::string(*payload) : std::string();
}

// `status` with a new message, keeping its code and payloads (a plain
// absl::Status(code, message) would drop the reason).
inline absl::Status WithMessage(const absl::Status& status, absl::string_view message) {
  absl::Status out(status.code(), message);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace provp::util
