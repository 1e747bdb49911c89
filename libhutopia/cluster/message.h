// The messages nodes of one space exchange on their Redis channel
// (docs/cluster.md): one JSON object per publication, with the format's
// version, the sending node and a kind. Parsed here and nowhere else; the
// input is whatever Redis hands over, so the parser checks every field.
//
// Thread: pure functions; any thread.
#ifndef HUTOPIA_CLUSTER_MESSAGE_H_
#define HUTOPIA_CLUSTER_MESSAGE_H_

#include <string>
#include <string_view>
#include <vector>

#include <hutopia/status.h>

#include "util/vocab.h"

namespace hut::cluster {

inline constexpr int kMessageVersion = 1;

struct Message {
  enum class Kind { kHeartbeat, kPresence, kEvent, kKv };
  Kind kind = Kind::kHeartbeat;
  std::string node;                             // the sender
  std::vector<std::string> users;               // heartbeat: every user online on the sender
  std::string user;                             // presence
  bool online = false;                          // presence
  EventTarget target = EventTarget::kEveryone;  // event: kUser, kRoom or kEveryone
  std::string target_id;                        // event: the user id for kUser, room id for kRoom
  std::string frame;                            // event: the bus frame, JSON object text
  std::string plugin;                           // kv: the plugin whose value changed
  std::string key;                              // kv: its key
};

std::string encode_message(const Message& m);
// kInvalidArgument with a reason for anything that is not a message of
// this version; unknown extra members are ignored (later versions add some).
Result<Message> parse_message(std::string_view text);

}  // namespace hut::cluster

#endif  // HUTOPIA_CLUSTER_MESSAGE_H_
