#include "space/cluster_node.h"

#include "util/url.h"

namespace hut::space {

Result<std::unique_ptr<cluster::Cluster>> join_cluster(uv_loop_t* loop, const SpaceConfig& config,
                                                       bus::Bus* bus, rooms::Rooms* rooms, Store* store) {
  const SpaceConfig::Cluster& c = config.cluster;
  if (c.redis.empty()) return std::unique_ptr<cluster::Cluster>();
  Result<RedisAddress> address = parse_redis_address(c.redis);
  if (!address.ok())
    return Status::invalid_argument("cluster.redis: " + std::string(address.status().message()));
  cluster::Cluster::Options o;
  o.redis = *address;
  o.space_id = config.space.id;
  o.node = c.node;
  o.heartbeat_ms = c.heartbeat_ms;
  o.node_timeout_ms = c.node_timeout_ms;
  o.reconnect_min_ms = c.reconnect_min_ms;
  o.reconnect_max_ms = c.reconnect_max_ms;
  cluster::Cluster::Handlers h;
  h.event = [bus, rooms](EventTarget target, const std::string& id, const std::string& frame) {
    if (target == EventTarget::kRoom)
      rooms->remote_room_event(id, frame);
    else if (target == EventTarget::kUser)
      rooms->remote_user_event(id, frame);
    else
      bus->send_event(target, id, frame);
  };
  h.presence = [rooms](const std::string& user, bool online) { rooms->remote_presence(user, online); };
  h.local_users = [rooms] { return rooms->local_users(); };
  h.kv_changed = [store](const std::string& plugin, const std::string& key) {
    store->kv_reload(plugin, key);
  };
  h.resubscribed = [store, rooms] {
    store->kv_reload_all();
    rooms->resync_rooms();
  };
  auto node = std::make_unique<cluster::Cluster>(loop, o, std::move(h));
  cluster::Cluster* n = node.get();
  bus->set_single_use(
      [n](std::string_view iss, std::string_view jti, int64_t ttl_ms, std::function<void(Status)> done) {
        n->use_token(iss, jti, ttl_ms, std::move(done));
      });
  rooms->set_cluster_hooks({[n](std::string_view user) { return n->online_elsewhere(user); },
                            [n](std::string_view user, bool online) { n->local_presence(user, online); },
                            [n](std::string_view user, const std::string& frame) {
                              n->publish_event(EventTarget::kUser, user, frame);
                            },
                            [n](std::string_view room, const std::string& frame) {
                              n->publish_event(EventTarget::kRoom, room, frame);
                            }});
  store->set_kv_written(
      [n](const std::string& plugin, const std::string& key) { n->publish_kv(plugin, key); });
  node->start();
  return node;
}

void leave_cluster(std::unique_ptr<cluster::Cluster>& cluster, bus::Bus* bus, rooms::Rooms* rooms,
                   Store* store) {
  if (!cluster) return;
  if (store != nullptr) store->set_kv_written({});
  if (bus != nullptr) bus->set_single_use({});
  if (rooms != nullptr) rooms->set_cluster_hooks({});
  cluster.reset();
}

size_t send_event_everywhere(cluster::Cluster* cluster, bus::Bus* bus, EventTarget target,
                             std::string_view id, std::string_view frame) {
  if (cluster != nullptr) cluster->publish_event(target, id, frame);
  return bus->send_event(target, id, frame);
}

}  // namespace hut::space
