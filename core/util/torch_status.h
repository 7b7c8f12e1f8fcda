// The one place where LibTorch exceptions become absl::Status. Every load,
// forward and optimizer step that crosses a public core/ function goes
// through TorchCall so that no c10::Error escapes. Header-only; include it
// only from translation units that already include LibTorch.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace provp::util {

// Maps an exception thrown by torch code to a Status. Out-of-memory becomes
// RESOURCE_EXHAUSTED, argument/index/type errors (caused by request data)
// INVALID_ARGUMENT, anything else INTERNAL. The message omits the C++
// backtrace, which belongs in logs, not in answers to clients.
inline absl::Status StatusFromCurrentException(const std::string& label) {
  try {
    throw;
  } catch (const c10::IndexError& e) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", e.what_without_backtrace()));
  } catch (const c10::ValueError& e) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", e.what_without_backtrace()));
  } catch (const c10::TypeError& e) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    if (msg.find("out of memory") != std::string::npos) {
      return absl::ResourceExhaustedError(absl::StrCat(label, ": ", msg));
    }
    return absl::InternalError(absl::StrCat(label, ": ", msg));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(label, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(label, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(label, ": unknown exception"));
  }
}

// Runs fn() and returns its result (Status, StatusOr<T>, T or void) as a
// Status/StatusOr, converting any exception with StatusFromCurrentException.
template <typename Fn>
auto TorchCall(const std::string& label, Fn&& fn) {
  using R = std::invoke_result_t<Fn>;
  if constexpr (std::is_void_v<R>) {
    try {
      fn();
      return absl::OkStatus();
    } catch (...) {
      return StatusFromCurrentException(label);
    }
  } else if constexpr (std::is_same_v<R, absl::Status>) {
    try {
      return fn();
    } catch (...) {
      return StatusFromCurrentException(label);
    }
  } else {
    using Out = std::conditional_t<std::is_convertible_v<absl::Status, R> &&
                                       !std::is_same_v<R, absl::Status>,
                                   R, absl::StatusOr<R>>;
    try {
      return Out(fn());
    } catch (...) {
      return Out(StatusFromCurrentException(label));
    }
  }
}

}  // namespace provp::util
