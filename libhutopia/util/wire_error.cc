#include "util/wire_error.h"

#include <hutopia/plugin.h>

#include "util/json.h"

namespace hut {
namespace {

using C = Status::Code;

struct Row {
  WireError code;
  std::string_view name;
  int http_status;
  Status::Code status;  // the Status an in-process caller gets
};

constexpr Row kTable[] = {
    {WireError::kBadRequest, "bad_request", 400, C::kInvalidArgument},
    {WireError::kUnauthenticated, "unauthenticated", 401, C::kUnauthenticated},
    {WireError::kForbidden, "forbidden", 403, C::kPermissionDenied},
    {WireError::kNotFound, "not_found", 404, C::kNotFound},
    {WireError::kConflict, "conflict", 409, C::kAlreadyExists},
    {WireError::kMuted, "muted", 403, C::kPermissionDenied},
    {WireError::kRateLimited, "rate_limited", 429, C::kResourceExhausted},
    {WireError::kTooLarge, "too_large", 413, C::kResourceExhausted},
    {WireError::kUnavailable, "unavailable", 503, C::kUnavailable},
    {WireError::kInternal, "internal", 500, C::kInternal},
    {WireError::kUnprocessable, "unprocessable", 422, C::kInvalidArgument},
};

const Row& row(WireError code) {
  for (const Row& r : kTable)
    if (r.code == code) return r;
  return kTable[9];  // internal
}

}  // namespace

std::string_view wire_error_name(WireError code) { return row(code).name; }

int wire_error_http_status(WireError code) { return row(code).http_status; }

Status wire_error_status(WireError code, std::string_view message) {
  return Status::from_code(row(code).status, message);
}

std::optional<WireError> wire_error_from_name(std::string_view name) {
  for (const Row& r : kTable)
    if (r.name == name) return r.code;
  return std::nullopt;
}

WireError wire_error_of(const Status& status) {
  switch (status.code()) {
    case Status::Code::kNotFound:
      return WireError::kNotFound;
    case Status::Code::kAlreadyExists:
      return WireError::kConflict;
    case Status::Code::kPermissionDenied:
      return WireError::kForbidden;
    case Status::Code::kInvalidArgument:
      return WireError::kBadRequest;
    case Status::Code::kResourceExhausted:
      return WireError::kTooLarge;
    case Status::Code::kFailedPrecondition:
    case Status::Code::kUnavailable:
      return WireError::kUnavailable;
    default:
      return WireError::kInternal;
  }
}

WireError wire_error_of_plugin(int rc) {
  switch (rc) {
    case HUT_EINVAL:
      return WireError::kBadRequest;
    case HUT_ENOENT:
      return WireError::kNotFound;
    case HUT_EPERM:
      return WireError::kForbidden;
    case HUT_EEXIST:
      return WireError::kConflict;
    case HUT_ETOOBIG:
      return WireError::kTooLarge;
    case HUT_EUNAVAIL:
      return WireError::kUnavailable;
    default:
      return WireError::kInternal;
  }
}

std::string http_error_body(std::string_view code, std::string_view message) {
  return JsonObject().raw("error", JsonObject().str("code", code).str("message", message).done()).done();
}

}  // namespace hut
