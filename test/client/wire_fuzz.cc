// libFuzzer target: any bytes as a frame from a space or an answer from a
// relay, through the client's readers (client/wire.h): a welcome, an event,
// a join answer, a room list, a space's /.well-known/hutopia, an error. The
// readers take any JSON (wrong types read as empty) and a message event
// carries the message it read.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "client/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  hut::client::Json j(cJSON_ParseWithLength(in.data(), in.size()));
  hut::client::HttpReply reply;
  reply.status = 400 + static_cast<int>(size % 100);
  reply.body = std::string(in);
  (void)hut::client::http_error(reply, "fuzz");
  if (!j) return 0;
  const cJSON* o = j.get();
  hut::Welcome w = hut::client::welcome_of(o, in);
  if (w.json != in) std::abort();
  hut::Event e = hut::client::event_of(o, in);
  if (e.op == "message" && (e.message.seq != e.seq || e.message.room != e.room)) std::abort();
  (void)hut::client::join_result_of(o);
  (void)hut::client::array_of<hut::RoomInfo>(o, "rooms", hut::client::room_of);
  (void)hut::client::space_info_of(o);
  hut::Message m = hut::client::message_of(o);
  (void)hut::client::message_frame(m.room, m);
  (void)hut::client::status_of_wire(hut::client::str(o, "code"), hut::client::str(o, "message"));
  return 0;
}
