// Status propagation macros. Debian's Abseil 20220623 has Status/StatusOr
// but none of these helpers, so the project carries its own (shape after
// Triton's status.h). Header-only; no state.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PROVP_STATUS_CONCAT_INNER_(a, b) a##b
#define PROVP_STATUS_CONCAT_(a, b) PROVP_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status provp_status_ = (expr);         \
    if (!provp_status_.ok()) return provp_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns x from a StatusOr,
// or returns its error status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  PROVP_ASSIGN_OR_RETURN_IMPL_(PROVP_STATUS_CONCAT_(provp_statusor_, __LINE__), lhs, rexpr)

#define PROVP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()
