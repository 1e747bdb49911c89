#include "util/wire_error.h"

#include <hutopia/plugin.h>

#include "util/json.h"
#include "util/table.h"

namespace hut {
namespace {

struct Row {
  WireError code;
  std::string_view name;
  int http_status;
};

constexpr Row kTable[] = {
    {WireError::kBadRequest, "bad_request", 400},      {WireError::kUnauthenticated, "unauthenticated", 401},
    {WireError::kForbidden, "forbidden", 403},         {WireError::kNotFound, "not_found", 404},
    {WireError::kConflict, "conflict", 409},           {WireError::kMuted, "muted", 403},
    {WireError::kRateLimited, "rate_limited", 429},    {WireError::kTooLarge, "too_large", 413},
    {WireError::kUnavailable, "unavailable", 503},     {WireError::kInternal, "internal", 500},
    {WireError::kUnprocessable, "unprocessable", 422},
};

const Row& row(WireError code) {
  for (const Row& r : kTable)
    if (r.code == code) return r;
  return kTable[9];  // internal
}

}  // namespace

std::string_view wire_error_name(WireError code) { return row(code).name; }

int wire_error_http_status(WireError code) { return row(code).http_status; }

std::optional<WireError> wire_error_from_name(std::string_view name) {
  for (const Row& r : kTable)
    if (r.name == name) return r.code;
  return std::nullopt;
}

constexpr std::pair<Status::Code, WireError> kStatusErrors[] = {
    {Status::Code::kNotFound, WireError::kNotFound},
    {Status::Code::kAlreadyExists, WireError::kConflict},
    {Status::Code::kPermissionDenied, WireError::kForbidden},
    {Status::Code::kInvalidArgument, WireError::kBadRequest},
    {Status::Code::kResourceExhausted, WireError::kTooLarge},
    {Status::Code::kFailedPrecondition, WireError::kUnavailable},
    {Status::Code::kUnavailable, WireError::kUnavailable},
};

WireError wire_error_of(const Status& status) {
  return util::second_of(kStatusErrors, status.code()).value_or(WireError::kInternal);
}

constexpr std::pair<int, WireError> kPluginErrors[] = {
    {HUT_EINVAL, WireError::kBadRequest}, {HUT_ENOENT, WireError::kNotFound},
    {HUT_EPERM, WireError::kForbidden},   {HUT_EEXIST, WireError::kConflict},
    {HUT_ETOOBIG, WireError::kTooLarge},  {HUT_EUNAVAIL, WireError::kUnavailable},
};

WireError wire_error_of_plugin(int rc) {
  return util::second_of(kPluginErrors, rc).value_or(WireError::kInternal);
}

std::string http_error_body(std::string_view code, std::string_view message) {
  return JsonObject().raw("error", JsonObject().str("code", code).str("message", message).done()).done();
}

}  // namespace hut
