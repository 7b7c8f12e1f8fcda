// Images of a request (encoded bytes or raw pixels) decoded into the
// engine's RGB form, with the pixel limit checked before any decoding work.
// Each failure is a per-image error naming the field. Pure; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/engine/engine.h"
#include "provp/v1/common.pb.h"
#include "server/state/limits.h"

namespace provp::server {

// Decodes one request image into RGB, enforcing the pixel limit. Errors are
// INVALID_ARGUMENT (IMAGE_DECODE_FAILED, IMAGE_TOO_LARGE, INVALID_RAW_IMAGE)
// naming `field` ("images[3]"), or UNIMPLEMENTED (URI_INPUT_DISABLED).
absl::StatusOr<engine::Image> DecodeRequestImage(const v1::Image& image, const Limits& limits,
                                                 const std::string& field);

}  // namespace provp::server
