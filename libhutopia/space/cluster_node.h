// The space as a node of a cluster: the Cluster built from `[cluster]` and
// wired into the bus (single-use tokens) and the rooms (presence, the users
// of the heartbeat), the store (plugin values one node commits, read again by
// the others), and events to users or everyone handed to it.
//
// Thread: the loop thread only.
// Ownership: the Space owns the Cluster; the bus, the rooms and the store
// must outlive it, and leave_cluster unhooks them before it goes.
#ifndef HUTOPIA_SPACE_CLUSTER_NODE_H_
#define HUTOPIA_SPACE_CLUSTER_NODE_H_

#include <uv.h>

#include <memory>
#include <string_view>

#include <hutopia/config.h>
#include <hutopia/status.h>

#include "bus/bus.h"
#include "cluster/cluster.h"
#include "rooms/rooms.h"
#include "store/store.h"

namespace hut::space {

// nullptr (and ok) when `[cluster] redis` is empty.
Result<std::unique_ptr<cluster::Cluster>> join_cluster(uv_loop_t* loop, const SpaceConfig& config,
                                                       bus::Bus* bus, rooms::Rooms* rooms, Store* store);
void leave_cluster(std::unique_ptr<cluster::Cluster>& cluster, bus::Bus* bus, rooms::Rooms* rooms,
                   Store* store);
// Delivers an event to this node's sessions and, on a cluster, to the other
// nodes' (events to users and to everyone); returns this node's count.
size_t send_event_everywhere(cluster::Cluster* cluster, bus::Bus* bus, EventTarget target,
                             std::string_view id, std::string_view frame);

}  // namespace hut::space

#endif  // HUTOPIA_SPACE_CLUSTER_NODE_H_
