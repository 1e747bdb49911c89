// The cluster's message format: what a node publishes parses back to the
// same message, and what is not a message of this version is refused.
#include <doctest/doctest.h>

#include <string>

#include "cluster/message.h"

namespace hut::cluster {
namespace {

TEST_CASE("cluster message: each kind encodes and parses back") {
  Message hb;
  hb.kind = Message::Kind::kHeartbeat;
  hb.node = "a";
  hb.users = {"alice", "bob \"quoted\""};
  Message pr;
  pr.kind = Message::Kind::kPresence;
  pr.node = "b";
  pr.user = "alice";
  pr.online = true;
  Message ev;
  ev.kind = Message::Kind::kEvent;
  ev.node = "c";
  ev.target = EventTarget::kUser;
  ev.target_id = "alice";
  ev.frame = R"({"op":"widget","plugin":"p","data":{"n":[1,2]}})";
  Message all = ev;
  all.target = EventTarget::kEveryone;
  all.target_id.clear();
  Message room = ev;
  room.target = EventTarget::kRoom;
  room.target_id = "lobby";
  room.frame = R"({"op":"message","room":"lobby","seq":7})";
  Message kv;
  kv.kind = Message::Kind::kKv;
  kv.node = "d";
  kv.plugin = "polls";
  kv.key = "poll/7 \"x\"";
  for (const Message& m : {hb, pr, ev, all, room, kv}) {
    Result<Message> back = parse_message(encode_message(m));
    REQUIRE_MESSAGE(back.ok(), back.status().to_string());
    CHECK(back->kind == m.kind);
    CHECK(back->node == m.node);
    CHECK(back->users == m.users);
    CHECK(back->user == m.user);
    CHECK(back->online == m.online);
    CHECK(back->target == m.target);
    CHECK(back->target_id == m.target_id);
    CHECK(back->frame == m.frame);
    CHECK(back->plugin == m.plugin);
    CHECK(back->key == m.key);
  }
}

TEST_CASE("cluster message: an event's frame is the object as sent, wherever it stands") {
  // Frame last, after scalars only (as encode_message writes it): its text.
  Result<Message> last = parse_message(
      R"({"v":1,"node":"a","kind":"event","to":"room","id":"r","frame": { "op":"message", "data":{"frame":1} } } )");
  REQUIRE(last.ok());
  CHECK(last->frame == R"({ "op":"message", "data":{"frame":1} })");
  Result<Message> spaced = parse_message(
      R"({"v":1,"node":"a","kind":"event","to":"room","id":"r","frame" : {"op":"message","frame":{}} })");
  REQUIRE(spaced.ok());
  CHECK(spaced->frame == R"({"op":"message","frame":{}})");
  // Frame first, or an object before it, or more after it: the same object.
  const char* shapes[] = {
      R"({"frame":{"op":"x","n":[1, 2]},"v":1,"node":"a","kind":"event","to":"room","id":"r"})",
      R"({"v":1,"extra":{"frame":{"op":"y"}},"node":"a","kind":"event","to":"room","id":"r","frame":{"op":"x","n":[1,2]}})",
      R"({"v":1,"node":"a","kind":"event","to":"room","id":"r","frame":{"op":"x","n":[1,2]}} {"frame":{}})",
      // The key written with a space; a key before it that ends in its name.
      R"({"v":1,"node":"a","kind":"event","to":"room","id":"r","frame" : {"op":"x","n":[1,2]}})",
      R"({"v":1,"node":"a","kind":"event","to":"room","id":"r","x\"frame":1,"frame":{"op":"x","n":[1,2]}})",
  };
  for (const char* text : shapes) {
    Result<Message> m = parse_message(text);
    REQUIRE_MESSAGE(m.ok(), text);
    CHECK_MESSAGE(m->frame == R"({"op":"x","n":[1,2]})", text);
    CHECK(m->target_id == "r");
  }
}

TEST_CASE("cluster message: anything else is refused with a reason") {
  const char* bad[] = {
      "",
      "[]",
      "not json",
      R"({"node":"a","kind":"presence","user":"u","online":true})",               // no version
      R"({"v":2,"node":"a","kind":"presence","user":"u","online":true})",         // a later version
      R"({"v":1,"kind":"presence","user":"u","online":true})",                    // no node
      R"({"v":1,"node":"","kind":"presence","user":"u","online":true})",          // empty node
      R"({"v":1,"node":"a","kind":"gossip"})",                                    // unknown kind
      R"({"v":1,"node":"a","kind":"heartbeat"})",                                 // no users
      R"({"v":1,"node":"a","kind":"heartbeat","users":[1]})",                     // a number as a user
      R"({"v":1,"node":"a","kind":"presence","user":"u","online":"yes"})",        // online not a bool
      R"({"v":1,"node":"a","kind":"event","to":"room","frame":{"op":"x"}})",      // no room id
      R"({"v":1,"node":"a","kind":"event","to":"user","frame":{"op":"x"}})",      // no user id
      R"({"v":1,"node":"a","kind":"event","to":"everyone","frame":"{}"})",        // frame not an object
      R"({"v":1,"node":"a","kind":"event","to":"everyone","frame":{"data":1}})",  // frame without op
      R"({"v":1,"node":"a","kind":"kv","key":"k"})",                              // no plugin
      R"({"v":1,"node":"a","kind":"kv","plugin":"p","key":""})",                  // empty key
  };
  for (const char* text : bad) {
    Result<Message> m = parse_message(text);
    CHECK_MESSAGE(!m.ok(), text);
    if (!m.ok()) CHECK(m.status().code() == Status::Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace hut::cluster
