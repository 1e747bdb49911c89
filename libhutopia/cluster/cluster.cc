#include "cluster/cluster.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "util/clock.h"
#include "util/log.h"

namespace hut::cluster {

std::string default_node_id() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "node");
  return std::string(host) + "-" + std::to_string(::getpid());
}

Cluster::Cluster(uv_loop_t* loop, Options options, Handlers handlers)
    : loop_(loop), options_(std::move(options)), handlers_(std::move(handlers)) {
  node_ = options_.node.empty() ? default_node_id() : options_.node;
  channel_ = "hut:" + options_.space_id + ":bus";
  std::string own = encode_message(message(Message::Kind::kEvent));
  own_event_prefix_ = own.substr(0, own.find(",\"to\":"));
  RedisLink::Options lo;
  lo.address = options_.redis;
  lo.backoff_min_ms = options_.reconnect_min_ms;
  lo.backoff_max_ms = options_.reconnect_max_ms;
  lo.name = "commands";
  commands_ =
      std::make_unique<RedisLink>(loop_, lo, RedisLink::Handlers{[this](bool up) { on_state(up); }, {}});
  lo.name = "subscriber";
  lo.subscribe = channel_;
  auto subscriber_state = [this](bool up) {
    if (up && subscribed_once_ && handlers_.resubscribed) handlers_.resubscribed();
    subscribed_once_ = subscribed_once_ || up;
    on_state(up);
  };
  subscriber_ = std::make_unique<RedisLink>(
      loop_, lo, RedisLink::Handlers{subscriber_state, [this](std::string_view p) { on_message(p); }});
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Cluster::~Cluster() {
  commands_.reset();
  subscriber_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Cluster::start() {
  log_write(LogLevel::kInfo, "cluster", "node " + node_ + " joins space " + options_.space_id);
  commands_->start();
  subscriber_->start();
  auto every = static_cast<uint64_t>(options_.heartbeat_ms);
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<Cluster*>(t->data)->tick(); }, every, every);
}

void Cluster::on_state(bool up) {
  // Back on the channel: tell the others at once who is here.
  if (up && ready()) {
    echo_ms_ = loop_now_ms(loop_);
    heartbeat();
  }
}

Message Cluster::message(Message::Kind kind) const {
  Message m;
  m.kind = kind;
  m.node = node_;
  return m;
}

void Cluster::publish(const Message& m) {
  commands_->command({"PUBLISH", channel_, encode_message(m)}, [](const redisReply*) {});
}

void Cluster::heartbeat() {
  if (!ready()) return;
  Message m = message(Message::Kind::kHeartbeat);
  if (handlers_.local_users) m.users = handlers_.local_users();
  publish(m);
}

void Cluster::tick() {
  commands_->check_stalled(options_.node_timeout_ms);
  uint64_t now = loop_now_ms(loop_);
  if (!ready()) echo_ms_ = now;
  if (ready() && now - echo_ms_ > static_cast<uint64_t>(options_.node_timeout_ms))
    subscriber_->drop("this node's heartbeats do not come back");
  heartbeat();
  // Nodes not heard from in time are gone, and so are their users.
  std::vector<std::string> gone;
  for (const auto& [id, peer] : peers_)
    if (now - peer.last_seen_ms > static_cast<uint64_t>(options_.node_timeout_ms)) gone.push_back(id);
  for (const std::string& id : gone) {
    log_write(LogLevel::kWarn, "cluster", "node " + id + " not heard from; its users are offline");
    set_peer_users(id, nullptr);
  }
}

void Cluster::set_peer_users(const std::string& node, const std::set<std::string>* users) {
  std::set<std::string> before;
  auto it = peers_.find(node);
  if (it != peers_.end()) before = std::move(it->second.users);
  if (users == nullptr) {
    if (it != peers_.end()) peers_.erase(it);
  } else {
    Peer& p = peers_[node];
    p.last_seen_ms = loop_now_ms(loop_);
    p.users = *users;
  }
  for (const std::string& u : before)
    if (users == nullptr || users->count(u) == 0) add_peer_user(node, u, false);
  if (users != nullptr)
    for (const std::string& u : *users)
      if (before.count(u) == 0) add_peer_user(node, u, true);
}

// Counts a user in or out of the peers that have them (the peer's own set
// is already up to date) and reports the edges.
void Cluster::add_peer_user(const std::string& /*node*/, const std::string& user, bool online) {
  int& n = elsewhere_[user];
  n += online ? 1 : -1;
  bool edge = online ? n == 1 : n == 0;
  if (n <= 0) elsewhere_.erase(user);
  if (edge && handlers_.presence) handlers_.presence(user, online);
}

void Cluster::on_message(std::string_view payload) {
  // This node's own events, the bulk of what comes back to it, need no parse.
  if (payload.substr(0, own_event_prefix_.size()) == own_event_prefix_) return;
  Result<Message> m = parse_message(payload);
  if (!m.ok()) {
    log_write(LogLevel::kWarn, "cluster", std::string(m.status().message()));
    return;
  }
  if (m->node == node_) {
    // This node delivered its own already; its heartbeat coming back shows
    // the subscription works.
    if (m->kind == Message::Kind::kHeartbeat) echo_ms_ = loop_now_ms(loop_);
    return;
  }
  switch (m->kind) {
    case Message::Kind::kHeartbeat: {
      std::set<std::string> users(m->users.begin(), m->users.end());
      set_peer_users(m->node, &users);
      break;
    }
    case Message::Kind::kPresence: {
      Peer& p = peers_[m->node];
      p.last_seen_ms = loop_now_ms(loop_);
      bool had = p.users.count(m->user) != 0;
      if (m->online == had) break;
      if (m->online)
        p.users.insert(m->user);
      else
        p.users.erase(m->user);
      add_peer_user(m->node, m->user, m->online);
      break;
    }
    case Message::Kind::kEvent:
      if (handlers_.event) handlers_.event(m->target, m->target_id, m->frame);
      break;
    case Message::Kind::kKv:
      if (handlers_.kv_changed) handlers_.kv_changed(m->plugin, m->key);
      break;
  }
}

void Cluster::use_token(std::string_view iss, std::string_view jti, int64_t ttl_ms,
                        std::function<void(Status)> done) {
  // The length of iss first, so that no two (iss, jti) pairs share a key.
  std::string key = "hut:" + options_.space_id + ":jti:" + std::to_string(iss.size()) + ":";
  key.append(iss);
  key.append(jti);
  auto cb = [done](const redisReply* r) {
    if (r == nullptr) {
      done(Status::unavailable("the cluster cannot check tokens now"));
    } else if (r->type == REDIS_REPLY_STATUS) {
      done(Status());
    } else if (r->type == REDIS_REPLY_NIL) {
      done(Status::already_exists("token already used"));
    } else {
      done(Status::unavailable("the cluster cannot check tokens now"));
    }
  };
  if (!commands_->command({"SET", key, "1", "NX", "PX", std::to_string(std::max<int64_t>(ttl_ms, 1))}, cb))
    done(Status::unavailable("the cluster cannot check tokens now"));
}

void Cluster::publish_kv(std::string_view plugin, std::string_view key) {
  if (!ready()) return;
  Message m = message(Message::Kind::kKv);
  m.plugin = std::string(plugin);
  m.key = std::string(key);
  publish(m);
}

void Cluster::publish_event(EventTarget target, std::string_view id, std::string_view frame) {
  if (target == EventTarget::kSession) return;
  if (!ready()) return;
  Message m = message(Message::Kind::kEvent);
  m.target = target;
  m.target_id = std::string(id);
  m.frame = std::string(frame);
  publish(m);
}

void Cluster::local_presence(std::string_view user, bool online) {
  if (!ready()) return;  // the next heartbeat after the reconnect carries it
  Message m = message(Message::Kind::kPresence);
  m.user = std::string(user);
  m.online = online;
  publish(m);
}

bool Cluster::online_elsewhere(std::string_view user) const {
  return elsewhere_.count(std::string(user)) != 0;
}

}  // namespace hut::cluster
