#include "bus/protocol.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

#include "token/json.h"
#include "util/table.h"

namespace hut::bus {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 22> kOps = {{
    {Op::kHello, "hello"},      {Op::kPing, "ping"},       {Op::kWidget, "widget"},
    {Op::kRooms, "rooms"},      {Op::kCreate, "create"},   {Op::kJoin, "join"},
    {Op::kLeave, "leave"},      {Op::kPost, "post"},       {Op::kEdit, "edit"},
    {Op::kDelete, "delete"},    {Op::kHistory, "history"}, {Op::kRead, "read"},
    {Op::kTyping, "typing"},    {Op::kMembers, "members"}, {Op::kDm, "dm"},
    {Op::kKick, "kick"},        {Op::kMute, "mute"},       {Op::kUnmute, "unmute"},
    {Op::kMuteAll, "mute_all"}, {Op::kRole, "role"},       {Op::kBan, "ban"},
    {Op::kUnban, "unban"},
}};

constexpr size_t kMaxRefChars = 64;

// Counts code points; `s` is valid UTF-8 (the network layer checked it).
size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// The ref as JSON text, or nullopt when it is not a valid ref.
std::optional<std::string> read_ref(const cJSON* ref) {
  if (cJSON_IsString(ref)) {
    std::string_view s(ref->valuestring);
    if (utf8_length(s) > kMaxRefChars) return std::nullopt;
    return json_string(s);
  }
  if (cJSON_IsNumber(ref)) {
    double d = ref->valuedouble;
    if (!std::isfinite(d)) return std::nullopt;
    // Whole numbers below 10^15 print the same through %1.15g (cJSON's way)
    // as in decimal, without printf and its read-back check.
    if (std::fabs(d) < 1e15 && d == std::trunc(d) && !(d == 0 && std::signbit(d))) {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
      if (ec == std::errc()) return std::string(buf, end);
    }
    std::string text = token_json::print(ref);
    if (text.empty()) return std::nullopt;  // cJSON ran out of memory
    return text;
  }
  return std::nullopt;
}

}  // namespace

std::string_view op_name(Op op) {
  for (const auto& [o, name] : kOps)
    if (o == op) return name;
  return "?";
}

std::optional<Op> op_from_name(std::string_view name) {
  for (const auto& [o, n] : kOps)
    if (n == name) return o;
  return std::nullopt;
}

bool is_room_op(Op op) { return op != Op::kHello && op != Op::kPing && op != Op::kWidget; }

constexpr std::pair<CloseCode, std::string_view> kCloseReasons[] = {
    {CloseCode::kGoingAway, "going away"},
    {CloseCode::kUnsupportedData, "binary frames are not accepted"},
    {CloseCode::kInvalidPayload, "text is not valid UTF-8"},
    {CloseCode::kPolicyViolation, "too many bad frames"},
    {CloseCode::kMessageTooBig, "message over the size limit"},
    {CloseCode::kUnauthenticated, "unauthenticated"},
    {CloseCode::kTryAgainLater, "try again later"},
    {CloseCode::kTooSlow, "too slow: unread output over the limit"},
};

std::string_view close_code_name(CloseCode code) {
  return util::second_of(kCloseReasons, code).value_or(std::string_view());
}

ParseOutcome parse_client_frame(std::string_view text) {
  ParseOutcome out;
  const char* end = nullptr;
  JsonPtr root(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, 0));
  if (!root) {
    out.message = "the frame is not JSON";
    return out;
  }
  // Only whitespace may follow the value.
  for (const char* p = end; p != nullptr && p < text.data() + text.size(); ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      out.message = "the frame is not one JSON value";
      return out;
    }
  }
  if (!cJSON_IsObject(root.get())) {
    out.message = "the frame is not a JSON object";
    return out;
  }
  const cJSON* ref = get_field(root.get(), "ref");
  std::string ref_json;
  if (ref != nullptr) {
    auto r = read_ref(ref);
    if (!r) {
      out.message = "ref must be a number or a string of at most 64 characters";
      return out;
    }
    ref_json = std::move(*r);
  }
  out.ref_json = ref_json;
  const cJSON* op = get_field(root.get(), "op");
  if (op == nullptr) {
    out.message = "the frame has no op";
    return out;
  }
  if (!cJSON_IsString(op)) {
    out.message = "op must be a string";
    return out;
  }
  auto known = op_from_name(op->valuestring);
  if (!known) {
    out.message = "unknown op";
    return out;
  }
  out.ok = true;
  out.frame.op = *known;
  out.frame.root = std::move(root);
  out.frame.ref_json = std::move(ref_json);
  return out;
}

namespace {

bool invisible_code_point(uint32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F ||
         cp == 0x061C || (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF;
}

}  // namespace

std::string clean_display_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  size_t i = 0;
  while (i < name.size()) {
    auto b = static_cast<unsigned char>(name[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    if (i + len > name.size()) len = name.size() - i;
    uint32_t cp = len == 1 ? b : (len == 2 ? b & 0x1Fu : len == 3 ? b & 0x0Fu : b & 0x07u);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(name[i + k]) & 0x3Fu);
    if (!invisible_code_point(cp)) out.append(name.substr(i, len));
    i += len;
  }
  return out;
}

std::string make_ok(std::string_view ref_json, std::string_view fields_json) {
  JsonObject out;
  out.str("op", "ok");
  if (!ref_json.empty()) out.raw("ref", ref_json);
  return out.members(fields_json).done();
}

std::string make_error(std::string_view ref_json, ErrorCode code, std::string_view message) {
  JsonObject out;
  out.str("op", "error");
  if (!ref_json.empty()) out.raw("ref", ref_json);
  return out.str("code", error_code_name(code)).str("message", message).done();
}

std::string make_widget_event(std::string_view plugin, std::string_view data_json) {
  return JsonObject().str("op", "widget").str("plugin", plugin).raw("data", data_json).done();
}

std::string make_notify_event(std::string_view plugin, std::string_view title, std::string_view body,
                              std::string_view url) {
  JsonObject out;
  out.str("op", "notify").str("plugin", plugin).str("title", title);
  if (!body.empty()) out.str("body", body);
  if (!url.empty()) out.str("url", url);
  return out.done();
}

}  // namespace hut::bus
