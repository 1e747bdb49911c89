// Fuzzes the management API (contract section 4): routing, the bearer token
// check, the JSON bodies of every route, and the query decoding of the
// history route, against the real rooms on a real store (rooms_harness.h),
// with sessions online so that the events the routes send are built too.
//
// Input format, read front to back until the bytes run out, one request each:
//   byte 0: the method (low 3 bits), the Authorization header (bits 3-4:
//           the right token, none, a wrong one, or "Bearer" alone), whether
//           the path is raw bytes (bit 5), and whether the body is a
//           structured one (bit 6) or raw bytes
//   then:   the path (a route from kRoutes with its room and user drawn from
//           pools, or raw bytes), the query (raw bytes), the body.
// Every request must be answered, at once or once the store is drained.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "admin/admin_api.h"
#include "bus/protocol.h"
#include "rooms_harness.h"

namespace {

constexpr std::string_view kAdminToken = "admin-token-of-the-fuzzed-space-000";

class Backend final : public hut::admin::AdminBackend {
 public:
  explicit Backend(hut::rooms::Rooms* rooms) : rooms_(rooms) {}
  hut::PluginRuntime* plugins() override { return nullptr; }
  hut::Status mint_token(std::string_view user, std::string_view name, int64_t ttl_s, std::string* token,
                         int64_t* expires_at_ms) override {
    if (user.size() > 64) return hut::Status::invalid_argument("user id too long");
    *token = std::string(user) + "." + std::string(name);
    *expires_at_ms = ttl_s * 1000;
    return hut::Status();
  }
  std::string metrics_text() override { return "hut_fuzz 1\n"; }
  void rooms_http(const std::shared_ptr<hut::net::HttpExchange>& ex) override { rooms_->handle_admin(ex); }

 private:
  hut::rooms::Rooms* rooms_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
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

const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "get"};
const char* const kRoutes[] = {
    "/healthz",
    "/metrics",
    "/api/v1/tokens",
    "/api/v1/rooms",
    "/api/v1/rooms/",
    "/api/v1/rooms/{r}",
    "/api/v1/rooms/{r}/messages",
    "/api/v1/rooms/{r}/members/{u}",
    "/api/v1/rooms/{r}/x",
    "/api/v1/plugins",
    "/api/v1/plugins/{u}",
    "/api/v1/plugins/{u}/reload",
    "/api/v1/roomsX",
};
const char* const kRooms[] = {"lobby", "dev", "secret", "", "a%2Fb", "x y"};
const char* const kUsersInPaths[] = {"alice", "bob", "ghost", "", "a/b", "admin"};

std::string path(Reader& in) {
  std::string p = kRoutes[in.byte() % std::size(kRoutes)];
  for (;;) {
    size_t at = p.find("{r}");
    if (at == std::string::npos) break;
    p.replace(at, 3, kRooms[in.byte() % std::size(kRooms)]);
  }
  size_t at = p.find("{u}");
  if (at != std::string::npos) p.replace(at, 3, kUsersInPaths[in.byte() % std::size(kUsersInPaths)]);
  return p;
}

// A body of the shape some route wants, with its values drawn from pools.
std::string body(Reader& in) {
  uint8_t b = in.byte();
  std::string room = hut::bus::json_string(kRooms[b % std::size(kRooms)]);
  std::string user = hut::bus::json_string(kUsersInPaths[(b >> 3) % std::size(kUsersInPaths)]);
  switch (in.byte() % 8) {
    case 0:
      return R"({"room":)" + room + R"(,"private":)" + ((b & 1) ? "true" : "false") + R"(,"topic":)" +
             hut::bus::json_string(in.bytes(24)) + R"(,"master":)" + user + R"(,"members":["alice","bob",)" +
             user + "]}";
    case 1:
      return R"({"text":)" + hut::bus::json_string(in.bytes(40)) + "}";
    case 2:
      return R"({"text":"hi","data":{"k":[1,2]},"from":{"id":)" + user + R"(,"name":"N","avatar":"a"}})";
    case 3:
      return R"({"role":")" +
             std::string((b & 3) == 0   ? "member"
                         : (b & 3) == 1 ? "moderator"
                         : (b & 3) == 2 ? "master"
                                        : "king") +
             "\"}";
    case 4:
      return R"({"user":)" + user + R"(,"name":"n","ttl":)" + std::to_string(static_cast<int>(b) - 20) + "}";
    case 5:
      return R"({"name":)" + user + "}";
    case 6:
      return R"({"text":)" + hut::bus::json_string(std::string(16385, 'w')) + "}";
    default:
      return "";
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  hut::fuzz::World& w = hut::fuzz::World::shared();
  // Two members online, so that the routes' events go somewhere.
  w.open_session(0);
  w.open_session(1);
  Backend backend(&w.rooms());
  hut::admin::AdminApi api(std::string(kAdminToken), &backend);
  Reader in(data, size);
  while (!in.done()) {
    uint8_t head = in.byte();
    auto ex = std::make_shared<hut::net::HttpExchange>();
    ex->listener = hut::net::Listener::kAdmin;
    ex->method = kMethods[head & 7];
    switch ((head >> 3) & 3) {
      case 0:
        ex->headers.emplace_back("authorization", "Bearer " + std::string(kAdminToken));
        break;
      case 1:
        break;
      case 2:
        ex->headers.emplace_back("authorization", "Bearer " + in.bytes(40));
        break;
      default:
        ex->headers.emplace_back("authorization", "Bearer");
        break;
    }
    ex->path = (head & 0x20) ? in.bytes(48) : path(in);
    ex->query = in.bytes(32);
    ex->body = (head & 0x40) ? body(in) : in.bytes(96);
    api.handle(ex);
    w.drain();
    if (!ex->responded()) __builtin_trap();
  }
  return 0;
}
