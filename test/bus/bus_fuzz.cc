// Fuzzes the bus frame parser and the op dispatch of a welcomed session.
// The session's connection has no socket behind it (its writes are dropped),
// so every input runs the parser, the envelope checks, the op's own field
// checks and the bad-frame budget, without a network.
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string_view>

#include "bus/bus.h"
#include "bus/protocol.h"

namespace {

struct Harness {
  uv_loop_t loop;
  std::unique_ptr<hut::TokenVerifier> verifier;
  hut::ReplayCache replay;
  std::unique_ptr<hut::bus::Bus> bus;
  hut::net::WsConnection conn;

  Harness() {
    uv_loop_init(&loop);
    hut::TokenVerifier::Options vo;
    vo.audience = "fuzz";
    verifier = std::make_unique<hut::TokenVerifier>(vo);
    auto key = hut::Key::hs256("fuzz-secret");
    verifier->trust(*key, "fuzz-app");
    hut::bus::Bus::Options bo;
    bo.space_id = "fuzz";
    bo.space_name = "Fuzz";
    bo.bad_frames = 1000000;
    bus = std::make_unique<hut::bus::Bus>(bo, &loop, verifier.get(), &replay);
    bus->on_open(&conn);
    hut::Claims c;
    c.iss = "fuzz-app";
    c.sub = "fuzzer";
    c.aud = "fuzz";
    c.jti = "one";
    c.iat = static_cast<int64_t>(std::time(nullptr));
    c.exp = c.iat + 300;
    auto token = hut::sign_token(*key, c);
    std::string hello = R"({"op":"hello","token":")" + *token + "\"}";
    bus->on_message(&conn, hello);
    if (bus->welcomed_count() != 1) __builtin_trap();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  hut::bus::ParseOutcome r = hut::bus::parse_client_frame(text);
  if (!r.ok) {
    std::string err = hut::bus::make_error(r.ref_json, hut::bus::ErrorCode::kBadRequest, r.message);
    if (!hut::bus::is_json(err)) __builtin_trap();
  } else if (!r.frame.ref_json.empty() && !hut::bus::is_json(hut::bus::make_ok(r.frame.ref_json))) {
    __builtin_trap();
  }
  h->bus->on_message(&h->conn, text);
  return 0;
}
