// The one place that knows the bus vocabulary (contract section 2): the ops,
// the error codes, the close codes, and the one parser of client frames.
//
// Thread: pure functions and values; any thread.
#ifndef HUTOPIA_BUS_PROTOCOL_H_
#define HUTOPIA_BUS_PROTOCOL_H_

#include <cjson/cJSON.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/json.h"
#include "util/wire_error.h"

namespace hut::bus {

// Client operations.
enum class Op {
  kHello,
  kPing,
  kWidget,
  // Room operations: known ops, answered by the rooms part when it is there.
  kRooms,
  kCreate,
  kJoin,
  kLeave,
  kPost,
  kEdit,
  kDelete,
  kHistory,
  kRead,
  kTyping,
  kMembers,
  kDm,
  kKick,
  kMute,
  kUnmute,
  kMuteAll,
  kRole,
  kBan,
  kUnban,
};

std::string_view op_name(Op op);
// nullopt for a name that is no client op.
std::optional<Op> op_from_name(std::string_view name);
bool is_room_op(Op op);

// The wire's error codes (util/wire_error.h).
using ErrorCode = WireError;

inline std::string_view error_code_name(ErrorCode code) { return wire_error_name(code); }

// WebSocket close codes the space sends.
enum class CloseCode : int {
  kGoingAway = 1001,        // the space shuts down
  kUnsupportedData = 1003,  // a binary frame
  kInvalidPayload = 1007,   // text that is not UTF-8
  kPolicyViolation = 1008,  // too many bad frames
  kMessageTooBig = 1009,    // a message over the size limit
  kTryAgainLater = 1013,    // the space cannot admit the session now (a node without its cluster)
  kUnauthenticated = 4001,  // no valid token
  kTooSlow = 4008,          // unread output over the backpressure limit
};

std::string_view close_code_name(CloseCode code);

// JSON helpers of util/json.h, by their bus names too.
using hut::get_field;
using hut::get_string;
using hut::is_json;
using hut::json_string;
using hut::JsonPtr;

// A client frame that passed the envelope checks: a JSON object with a known
// string `op` and, when present, a valid `ref`.
struct ClientFrame {
  Op op = Op::kPing;
  JsonPtr root;          // the whole object; fields are read from here
  std::string ref_json;  // the `ref` as JSON text ("7", "\"a\""), "" when absent
};

// The outcome of parsing one text message.
struct ParseOutcome {
  bool ok = false;
  ClientFrame frame;     // when ok
  std::string message;   // when not ok: why, for a person
  std::string ref_json;  // when not ok: the ref, when a valid one could be read
};

// Checks the envelope only; op-specific fields are checked by the op.
ParseOutcome parse_client_frame(std::string_view text);

// `name` without bidi controls (U+202A-202E, U+2066-2069, U+200E, U+200F,
// U+061C) and zero-width characters (U+200B-200D, U+2060, U+FEFF), so that a
// display name cannot reorder or hide the text around it where others see it.
std::string clean_display_name(std::string_view name);

// {"op":"ok","ref":R} plus `fields_json` (either empty or `"k":v,...`).
std::string make_ok(std::string_view ref_json, std::string_view fields_json = {});
// {"op":"error","ref":R?,"code":...,"message":...}.
std::string make_error(std::string_view ref_json, ErrorCode code, std::string_view message);
// {"op":"widget","plugin":...,"data":<data_json>}.
std::string make_widget_event(std::string_view plugin, std::string_view data_json);
// {"op":"notify","plugin","title","body"?,"url"?}.
std::string make_notify_event(std::string_view plugin, std::string_view title, std::string_view body,
                              std::string_view url);

}  // namespace hut::bus

#endif  // HUTOPIA_BUS_PROTOCOL_H_
