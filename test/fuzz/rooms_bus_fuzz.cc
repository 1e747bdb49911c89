// Fuzzes the rooms through the bus: six sessions of five users on a real
// store with the first-party plugins loaded (rooms_harness.h), driven by a sequence of well-formed room ops
// whose fields are drawn from small pools (rooms, users, seqs, roles) and mutated, so that permissions,
// paging, moderation and the post pipeline run, not only the frame parser.
//
// Input format, read front to back until the bytes run out, one op each:
//   byte 0: the session (mod 6); bit 7 set: do not wait for the store after
//           this op (its writes share a group commit with the next ones)
//   byte 1: the op, an index into kOps; past its end: a control op (the
//           session closes, or sends raw bytes as a frame)
//   then:   each field of the op in the order kOps names them; a field that
//           is optional ('?') takes one byte saying whether it is there, and
//           each field takes a byte for its value (see Reader::field).
// After the last op the loop is drained; the next input starts from an empty
// space (World::shared()).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/protocol.h"
#include "rooms_harness.h"

namespace {

// One line per op: its name and its fields. A field name is a key of the op's
// JSON object; its kind decides how the value is drawn (Reader::value).
// Unknown ops and fields are harmless (the bus answers bad_request).
struct OpSpec {
  const char* op;
  const char* fields;  // space-separated; '?' before a name: optional
};
constexpr OpSpec kOps[] = {
    {"rooms", ""},
    {"create", "room ?private ?topic"},
    {"join", "room"},
    {"leave", "room"},
    {"post", "room text ?data"},
    {"edit", "room seq text"},
    {"delete", "room seq"},
    {"history", "room ?before ?after ?limit"},
    {"read", "room seq"},
    {"typing", "room"},
    {"members", "room ?after ?limit"},
    {"dm", "user"},
    {"kick", "room user"},
    {"mute", "room user ?seconds"},
    {"unmute", "room user"},
    {"mute_all", "room on"},
    {"role", "room user role"},
    {"ban", "room user ?seconds"},
    {"unban", "room user"},
    {"ping", ""},
    {"widget", "plugin data"},
};
constexpr size_t kOpCount = sizeof kOps / sizeof kOps[0];

const char* const kRoomNames[] = {"lobby", "dev", "secret", "x"};
const char* const kRoles[] = {"member", "moderator", "master", "owner"};
const char* const kPlugins[] = {"counter", "echo", "moderation", "nope"};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  // Up to `max` raw bytes, their count taken from one byte.
  std::string bytes(size_t max) {
    size_t n = byte() % (max + 1);
    n = std::min<size_t>(n, static_cast<size_t>(end_ - p_));
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// A JSON value for the field `name`: most of the time of the right kind and
// from its pool, sometimes a value of the wrong kind or a raw string.
std::string value(Reader& in, std::string_view name, const hut::fuzz::CountingStore& store) {
  uint8_t b = in.byte();
  switch (b >> 5) {  // 0-5: well formed; 6: another kind; 7: raw text
    case 6: {
      static const char* const kOdd[] = {"null", "true", "-1", "1.5", "[]", "{}", "\"\"", "1e300"};
      return kOdd[b & 7];
    }
    case 7:
      return hut::bus::json_string(in.bytes(32));
    default:
      break;
  }
  if (name == "room") {
    const auto& made = store.created_rooms();
    size_t n = std::size(kRoomNames) + made.size();
    size_t i = b % n;
    return hut::bus::json_string(i < std::size(kRoomNames) ? kRoomNames[i] : made[i - std::size(kRoomNames)]);
  }
  if (name == "user") {
    size_t i = b % (hut::fuzz::kUserCount + 2);
    if (i == hut::fuzz::kUserCount) return "\"ghost\"";
    if (i == hut::fuzz::kUserCount + 1) return "\"admin\"";
    return hut::bus::json_string(hut::fuzz::kUsers[i]);
  }
  if (name == "seq" || name == "before" || name == "after") return std::to_string(b % 12);
  if (name == "limit") return std::to_string(b % 6 == 5 ? 201 : b % 6);
  if (name == "seconds") return std::to_string(b % 4 == 3 ? 0 : 1 + b % 4 * 100);
  if (name == "role") return hut::bus::json_string(kRoles[b % std::size(kRoles)]);
  if (name == "private" || name == "on") return (b & 1) ? "true" : "false";
  if (name == "plugin") return hut::bus::json_string(kPlugins[b % std::size(kPlugins)]);
  if (name == "data") {
    static const char* const kData[] = {"{}",      "{\"k\":[1,2,{\"x\":null}]}", "\"s\"",
                                        "[1,2,3]", "{\"op\":\"increment\"}",     "{\"op\":\"get\"}"};
    return kData[b % std::size(kData)];
  }
  // text, topic and anything else: raw bytes as a JSON string, sometimes a
  // word the moderation plugin refuses, sometimes long enough to pass the
  // size limits.
  if ((b & 31) == 30) return "\"buy SPAM now\"";
  if ((b & 31) == 31) return hut::bus::json_string(std::string(16385 + (b >> 6), 'w'));
  return hut::bus::json_string(in.bytes(40));
}

std::string frame(Reader& in, const OpSpec& spec, uint64_t ref, const hut::fuzz::CountingStore& store) {
  std::string out = R"({"op":)" + hut::bus::json_string(spec.op) + R"(,"ref":)" + std::to_string(ref);
  std::string_view fields = spec.fields;
  while (!fields.empty()) {
    size_t sp = fields.find(' ');
    std::string_view f = fields.substr(0, sp);
    fields = sp == std::string_view::npos ? std::string_view() : fields.substr(sp + 1);
    bool optional = !f.empty() && f.front() == '?';
    if (optional) {
      f.remove_prefix(1);
      if ((in.byte() & 1) == 0) continue;
    }
    out += ',' + hut::bus::json_string(f) + ':' + value(in, f, store);
  }
  return out + '}';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // long inputs add time, not depth
  hut::fuzz::World& w = hut::fuzz::World::shared();
  Reader in(data, size);
  uint64_t ref = 0;
  while (!in.done()) {
    uint8_t head = in.byte();
    size_t s = (head & 0x7f) % hut::fuzz::World::kSessions;
    bool wait = (head & 0x80) == 0;
    uint8_t op = in.byte();
    if (op < kOpCount) {
      w.send(s, hut::fuzz::valid_utf8(frame(in, kOps[op], ++ref, w.store())));
    } else if (op % 8 == 0) {
      w.close_session(s);
    } else if (op % 8 == 1) {
      w.send(s, hut::fuzz::valid_utf8(in.bytes(64)));
    } else {
      w.send(s, hut::fuzz::valid_utf8(frame(in, kOps[op % kOpCount], ++ref, w.store())));
    }
    if (wait) w.drain();
  }
  return 0;
}
