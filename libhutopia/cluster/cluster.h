// This spaced as one node of a space served by several (docs/cluster.md):
// single-use tokens checked in Redis, presence as the union of the nodes'
// online users (kept by heartbeats), and events to users or to everyone
// published for the other nodes to deliver to their own sessions.
//
// Thread: the loop thread only.
// Ownership: the Space owns the Cluster; the Cluster owns its two Redis
// links (commands, and the subscriber of the space's channel) and its
// heartbeat timer. The handlers run on the loop, never after the Cluster is
// gone.
#ifndef HUTOPIA_CLUSTER_CLUSTER_H_
#define HUTOPIA_CLUSTER_CLUSTER_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <hutopia/status.h>

#include "cluster/message.h"
#include "cluster/redis_link.h"
#include "util/vocab.h"

namespace hut::cluster {

class Cluster {
 public:
  struct Options {
    RedisAddress redis;
    std::string space_id;
    std::string node;  // empty: <host name>-<pid>
    int64_t heartbeat_ms = 1000;
    int64_t node_timeout_ms = 5000;
    int64_t reconnect_min_ms = 100;
    int64_t reconnect_max_ms = 5000;
  };
  struct Handlers {
    // An event another node published, for this node's sessions.
    std::function<void(EventTarget target, const std::string& id, const std::string& frame)> event;
    // A user came online on some other node while on none before (true),
    // or is now online on no other node (false).
    std::function<void(const std::string& user, bool online)> presence;
    // The users with a session on this node, for the heartbeat.
    std::function<std::vector<std::string>()> local_users;
    // Another node committed a plugin's value (set or removed) to the
    // shared store.
    std::function<void(const std::string& plugin, const std::string& key)> kv_changed;
    // The channel is subscribed again after Redis was away: whatever the
    // other nodes changed meanwhile came with no message.
    std::function<void()> resubscribed;
  };

  Cluster(uv_loop_t* loop, Options options, Handlers handlers);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void start();
  const std::string& node() const { return node_; }
  // Both links up: tokens can be checked and events published.
  bool ready() const { return commands_->up() && subscriber_->up(); }

  // Marks the token (iss, jti) used in Redis for `ttl_ms`: ok the first time
  // on any node, kAlreadyExists after, kUnavailable when Redis cannot say.
  void use_token(std::string_view iss, std::string_view jti, int64_t ttl_ms,
                 std::function<void(Status)> done);
  // Publishes an event to a user, a room's members or everyone for the other nodes; this
  // node delivers to its own sessions itself. Dropped while Redis is away.
  void publish_event(EventTarget target, std::string_view id, std::string_view frame);
  // Tells the other nodes that this one committed a plugin's value, so that
  // they read it again. Dropped while Redis is away (docs/cluster.md).
  void publish_kv(std::string_view plugin, std::string_view key);
  // A user's first session on this node opened (true) or last one closed.
  void local_presence(std::string_view user, bool online);
  bool online_elsewhere(std::string_view user) const;

 private:
  struct Peer {
    uint64_t last_seen_ms = 0;
    std::set<std::string> users;
  };
  void on_message(std::string_view payload);
  void on_state(bool up);
  void heartbeat();
  // Every heartbeat_ms: the heartbeat, stalled links dropped, silent nodes gone.
  void tick();
  Message message(Message::Kind kind) const;  // from this node
  void publish(const Message& m);
  // Sets a peer's users (or drops the peer for nullptr) and reports the
  // users whose presence elsewhere changed.
  void set_peer_users(const std::string& node, const std::set<std::string>* users);
  void add_peer_user(const std::string& node, const std::string& user, bool online);

  uv_loop_t* loop_;
  Options options_;
  Handlers handlers_;
  std::string node_;
  std::string channel_;
  // How this node's own events start once encoded: they come back on the
  // channel and are dropped unparsed.
  std::string own_event_prefix_;
  std::unique_ptr<RedisLink> commands_;
  std::unique_ptr<RedisLink> subscriber_;
  std::unordered_map<std::string, Peer> peers_;
  std::unordered_map<std::string, int> elsewhere_;  // user -> number of peers that have them
  bool subscribed_once_ = false;                    // the subscriber was up before
  uint64_t echo_ms_ = 0;                            // when this node last heard its own heartbeat back
  uv_timer_t* timer_ = nullptr;                     // heap, freed by its close callback
};

// The default node id: "<host name>-<pid>".
std::string default_node_id();

}  // namespace hut::cluster

#endif  // HUTOPIA_CLUSTER_CLUSTER_H_
